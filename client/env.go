package client

import (
	"errors"
	"os"
	"strings"
)

// EnvConnectionString names the environment variable that may hold a whole
// connection string (see ParseConnectionString). ConfigFromEnv reads it
// first; the per-field variables override its fields.
const EnvConnectionString = "CAIRN_CONNECTION_STRING"

// EnvVars lists the per-field environment variables ConfigFromEnv reads, in
// the order of the connection-string keys.
func EnvVars() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.env
	}
	return out
}

// ConfigFromEnv builds a Config from the process environment. It reads
// CAIRN_CONNECTION_STRING first, if set, then one variable per
// connection-string key, each overriding that field:
//
//	CAIRN_ENDPOINTS               endpoints separated by ',' or '|'   (Server)
//	CAIRN_DIAL_TIMEOUT            milliseconds                        (DialTimeout)
//	CAIRN_DIAL_KEEPALIVE_TIME     milliseconds                        (DialKeepAliveTime)
//	CAIRN_DIAL_KEEPALIVE_TIMEOUT  milliseconds                        (DialKeepAliveTimeout)
//	CAIRN_MAX_CALL_SEND_MSG_SIZE  bytes                               (MaxCallSendMsgSize)
//	CAIRN_MAX_CALL_RECV_MSG_SIZE  bytes                               (MaxCallRecvMsgSize)
//	CAIRN_USERNAME, CAIRN_PASSWORD                                    (Username, Password)
//	CAIRN_REJECT_OLD_CLUSTER      true/false                          (RejectOldCluster)
//	CAIRN_PERMIT_WITHOUT_STREAM   true/false                          (PermitWithoutStream)
//	CAIRN_CACERT, CAIRN_CERT, CAIRN_KEY  PEM file paths               (CACert, Cert, Key)
//	CAIRN_SERVER_NAME             server certificate name             (ServerName)
//
// Unset and empty variables leave their field zero, so New applies the
// defaults. A bad value fails with a *FieldError naming the variable.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup is ConfigFromEnv reading variables through lookup (for
// tests, or another source of settings).
func ConfigFromLookup(lookup func(name string) (string, bool)) (Config, error) {
	var c Config
	if s, ok := lookup(EnvConnectionString); ok && strings.TrimSpace(s) != "" {
		var err error
		if c, err = ParseConnectionString(s); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Source = "environment: " + EnvConnectionString
			}
			return Config{}, err
		}
	}
	for _, st := range settings {
		v, ok := lookup(st.env)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			continue
		}
		if st.key == "Server" {
			v = strings.ReplaceAll(v, ",", "|")
		}
		if err := st.parse(&c, v); err != nil {
			return Config{}, &FieldError{Source: "environment", Field: st.env, Reason: err.Error()}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
