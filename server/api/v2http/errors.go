package v2http

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The v2 error codes, as etcd 3.5's etcdserver/api/v2error. Only the codes
// this package returns are named; messages come from errorMessages.
const (
	ecodeKeyNotFound       = 100
	ecodeTestFailed        = 101
	ecodeNotFile           = 102
	ecodeNotDir            = 104
	ecodeNodeExist         = 105
	ecodeRootROnly         = 107
	ecodeDirNotEmpty       = 108
	ecodeUnauthorized      = 110
	ecodePrevValueRequired = 201
	ecodeTTLNaN            = 202
	ecodeIndexNaN          = 203
	ecodeInvalidField      = 209
	ecodeInvalidForm       = 210
	ecodeRefreshValue      = 211
	ecodeRefreshTTLNeeded  = 212
	ecodeRaftInternal      = 300
	ecodeLeaderElect       = 301
	ecodeEventIndexCleared = 401
)

// errorMessages are etcd 3.5's v2 error messages (v2error.errors), for the
// codes Cairn returns.
var errorMessages = map[int]string{
	ecodeKeyNotFound:       "Key not found",
	ecodeTestFailed:        "Compare failed",
	ecodeNotFile:           "Not a file",
	ecodeNotDir:            "Not a directory",
	ecodeNodeExist:         "Key already exists",
	ecodeRootROnly:         "Root is read only",
	ecodeDirNotEmpty:       "Directory not empty",
	ecodeUnauthorized:      "The request requires user authentication",
	ecodePrevValueRequired: "PrevValue is Required in POST form",
	ecodeTTLNaN:            "The given TTL in POST form is not a number",
	ecodeIndexNaN:          "The given index in POST form is not a number",
	ecodeInvalidField:      "Invalid field",
	ecodeInvalidForm:       "Invalid POST form",
	ecodeRefreshValue:      "Value provided on refresh",
	ecodeRefreshTTLNeeded:  "A TTL must be provided on refresh",
	ecodeRaftInternal:      "Raft Internal Error",
	ecodeLeaderElect:       "During Leader Election",
	ecodeEventIndexCleared: "The event in requested index is outdated and cleared",
}

// errorStatus maps codes to HTTP statuses as v2error.errorStatus; other
// codes answer 400 Bad Request.
var errorStatus = map[int]int{
	ecodeKeyNotFound:  http.StatusNotFound,
	ecodeNotFile:      http.StatusForbidden,
	ecodeDirNotEmpty:  http.StatusForbidden,
	ecodeUnauthorized: http.StatusUnauthorized,
	ecodeTestFailed:   http.StatusPreconditionFailed,
	ecodeNodeExist:    http.StatusPreconditionFailed,
	ecodeRaftInternal: http.StatusInternalServerError,
	ecodeLeaderElect:  http.StatusInternalServerError,
}

// Error is a v2 API error, encoded as etcd's v2error.Error:
// {"errorCode":100,"message":"Key not found","cause":"/foo","index":7}.
// Index is the store index (Cairn: the v3 revision) the error was decided
// at, 0 for a malformed request.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

func newError(code int, cause string, index int64) *Error {
	return &Error{ErrorCode: code, Message: errorMessages[code], Cause: cause, Index: uint64(max(index, 0))}
}

func (e *Error) Error() string { return e.Message + " (" + e.Cause + ")" }

// StatusCode is the HTTP status e is answered with.
func (e *Error) StatusCode() int {
	if s, ok := errorStatus[e.ErrorCode]; ok {
		return s
	}
	return http.StatusBadRequest
}

// writeTo answers with e as etcd does: X-Etcd-Index, JSON and a newline.
func (e *Error) writeTo(w http.ResponseWriter) {
	w.Header().Add("X-Etcd-Index", fmt.Sprint(e.Index))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.StatusCode())
	b, _ := json.Marshal(e)
	w.Write(append(b, '\n'))
}

// httpError is etcd's httptypes.HTTPError: {"message":...} with a status,
// the members API's errors.
type httpError struct {
	Message string `json:"message"`
	code    int
}

func (e *httpError) writeTo(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.code)
	b, _ := json.Marshal(e)
	w.Write(b)
}
