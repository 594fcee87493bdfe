package client

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FieldError is a Config, connection-string or environment value that
// could not be used. Its message names the field, e.g.
//
//	client: connection string: DialTimeout: "5s" is not a whole number of milliseconds
type FieldError struct {
	// Source is "connection string", "environment" or "config" (from
	// Config.Validate).
	Source string
	// Field is the connection-string key (DialTimeout) or the environment
	// variable (CAIRN_DIAL_TIMEOUT).
	Field string
	// Reason says what is wrong with the value.
	Reason string
}

// Error formats the error as "client: <source>: <field>: <reason>".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return "client: " + e.Source + ": " + e.Reason
	}
	return "client: " + e.Source + ": " + e.Field + ": " + e.Reason
}

// A setting is one Config field as it appears in a connection string and in
// the environment. One table serves the parser, the formatter and
// ConfigFromEnv, so the three cannot drift apart.
type setting struct {
	key string // connection-string key, matched case-insensitively
	env string // environment variable
	// parse stores the (trimmed, unquoted, non-empty) value in c, or says
	// why it cannot.
	parse func(c *Config, v string) error
	// format returns the value, or "" when the field is zero and omitted.
	format func(c *Config) string
}

var settings = []setting{
	{key: "Server", env: "CAIRN_ENDPOINTS", parse: parseEndpoints,
		format: func(c *Config) string { return strings.Join(c.Endpoints, "|") }},
	{key: "DialTimeout", env: "CAIRN_DIAL_TIMEOUT",
		parse:  func(c *Config, v string) (err error) { c.DialTimeout, err = parseMillis(v); return },
		format: func(c *Config) string { return formatMillis(c.DialTimeout) }},
	{key: "DialKeepAliveTime", env: "CAIRN_DIAL_KEEPALIVE_TIME",
		parse:  func(c *Config, v string) (err error) { c.DialKeepAliveTime, err = parseMillis(v); return },
		format: func(c *Config) string { return formatMillis(c.DialKeepAliveTime) }},
	{key: "DialKeepAliveTimeout", env: "CAIRN_DIAL_KEEPALIVE_TIMEOUT",
		parse:  func(c *Config, v string) (err error) { c.DialKeepAliveTimeout, err = parseMillis(v); return },
		format: func(c *Config) string { return formatMillis(c.DialKeepAliveTimeout) }},
	{key: "MaxCallSendMsgSize", env: "CAIRN_MAX_CALL_SEND_MSG_SIZE",
		parse:  func(c *Config, v string) (err error) { c.MaxCallSendMsgSize, err = parseBytes(v); return },
		format: func(c *Config) string { return formatInt(c.MaxCallSendMsgSize) }},
	{key: "MaxCallRecvMsgSize", env: "CAIRN_MAX_CALL_RECV_MSG_SIZE",
		parse:  func(c *Config, v string) (err error) { c.MaxCallRecvMsgSize, err = parseBytes(v); return },
		format: func(c *Config) string { return formatInt(c.MaxCallRecvMsgSize) }},
	{key: "Username", env: "CAIRN_USERNAME",
		parse:  func(c *Config, v string) error { c.Username = v; return nil },
		format: func(c *Config) string { return c.Username }},
	{key: "Password", env: "CAIRN_PASSWORD",
		parse:  func(c *Config, v string) error { c.Password = v; return nil },
		format: func(c *Config) string { return c.Password }},
	{key: "RejectOldCluster", env: "CAIRN_REJECT_OLD_CLUSTER",
		parse:  func(c *Config, v string) (err error) { c.RejectOldCluster, err = parseBool(v); return },
		format: func(c *Config) string { return formatBool(c.RejectOldCluster) }},
	{key: "PermitWithoutStream", env: "CAIRN_PERMIT_WITHOUT_STREAM",
		parse:  func(c *Config, v string) (err error) { c.PermitWithoutStream, err = parseBool(v); return },
		format: func(c *Config) string { return formatBool(c.PermitWithoutStream) }},
	{key: "CACert", env: "CAIRN_CACERT",
		parse:  func(c *Config, v string) error { c.CACert = v; return nil },
		format: func(c *Config) string { return c.CACert }},
	{key: "Cert", env: "CAIRN_CERT",
		parse:  func(c *Config, v string) error { c.Cert = v; return nil },
		format: func(c *Config) string { return c.Cert }},
	{key: "Key", env: "CAIRN_KEY",
		parse:  func(c *Config, v string) error { c.Key = v; return nil },
		format: func(c *Config) string { return c.Key }},
	{key: "ServerName", env: "CAIRN_SERVER_NAME",
		parse:  func(c *Config, v string) error { c.ServerName = v; return nil },
		format: func(c *Config) string { return c.ServerName }},
}

func lookupSetting(key string) (setting, bool) {
	for _, s := range settings {
		if strings.EqualFold(s.key, key) {
			return s, true
		}
	}
	return setting{}, false
}

func settingKeys() string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.key
	}
	return strings.Join(keys, ", ")
}

// ParseConnectionString parses a comma-separated list of Key=Value pairs:
//
//	Server=127.0.0.1:2379|127.0.0.1:22379,DialTimeout=5000,Username=u,Password=p
//
// The keys, matched case-insensitively, are:
//
//	Server                endpoints separated by '|'            (Config.Endpoints)
//	DialTimeout           milliseconds                          (Config.DialTimeout)
//	DialKeepAliveTime     milliseconds                          (Config.DialKeepAliveTime)
//	DialKeepAliveTimeout  milliseconds                          (Config.DialKeepAliveTimeout)
//	MaxCallSendMsgSize    bytes                                 (Config.MaxCallSendMsgSize)
//	MaxCallRecvMsgSize    bytes                                 (Config.MaxCallRecvMsgSize)
//	Username, Password    text                                  (Config.Username, Password)
//	RejectOldCluster      true/false (also 1/0, t/f)            (Config.RejectOldCluster)
//	PermitWithoutStream   true/false                            (Config.PermitWithoutStream)
//	CACert, Cert, Key     PEM file paths (turn TLS on)          (Config.CACert, Cert, Key)
//	ServerName            name the server certificate is for    (Config.ServerName)
//
// Spaces around keys and values are ignored. A value that contains a comma
// or a double quote, or starts or ends with a space, is written in double
// quotes, with "" standing for one quote: Password="a,""b""". Empty pairs
// (a trailing comma) are skipped. Fields not given keep their zero value,
// so New applies the defaults (127.0.0.1:2379, 5000 ms).
//
// A malformed string, an unknown or repeated key, or a bad value fails with
// a *FieldError that names the key.
func ParseConnectionString(s string) (Config, error) {
	var c Config
	pairs, err := splitPairs(s)
	if err != nil {
		return Config{}, err
	}
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		st, ok := lookupSetting(p.key)
		if !ok {
			return Config{}, &FieldError{Source: "connection string", Field: p.key,
				Reason: "unknown key (known: " + settingKeys() + ")"}
		}
		if seen[st.key] {
			return Config{}, &FieldError{Source: "connection string", Field: st.key, Reason: "given more than once"}
		}
		seen[st.key] = true
		if err := parseValue(&c, st, p.value); err != nil {
			return Config{}, &FieldError{Source: "connection string", Field: st.key, Reason: err.Error()}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func parseValue(c *Config, st setting, v string) error {
	if v == "" {
		if st.key == "Username" || st.key == "Password" {
			return nil
		}
		return fmt.Errorf("empty value")
	}
	return st.parse(c, v)
}

// ConnectionString formats c as ParseConnectionString reads it, omitting
// zero fields. Durations are written in whole milliseconds (anything finer
// is dropped). The result contains the password in clear text.
func (c Config) ConnectionString() string {
	var parts []string
	for _, s := range settings {
		if v := s.format(&c); v != "" {
			parts = append(parts, s.key+"="+quoteValue(v))
		}
	}
	return strings.Join(parts, ",")
}

type pair struct{ key, value string }

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// splitPairs splits s into Key=Value pairs, unquoting quoted values.
func splitPairs(s string) ([]pair, error) {
	var out []pair
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ',' {
			j++
		}
		key := strings.TrimSpace(s[i:j])
		if j == len(s) || s[j] == ',' {
			if key != "" {
				return nil, &FieldError{Source: "connection string", Field: key, Reason: "missing '=' (want Key=Value)"}
			}
			i = j + 1
			continue
		}
		if key == "" {
			return nil, &FieldError{Source: "connection string", Reason: fmt.Sprintf("empty key before '=' at offset %d", j)}
		}
		k := j + 1
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k < len(s) && s[k] == '"' {
			var b strings.Builder
			closed := false
			for k++; k < len(s); k++ {
				if s[k] != '"' {
					b.WriteByte(s[k])
					continue
				}
				if k+1 < len(s) && s[k+1] == '"' {
					b.WriteByte('"')
					k++
					continue
				}
				closed = true
				k++
				break
			}
			if !closed {
				return nil, &FieldError{Source: "connection string", Field: key, Reason: "unterminated quoted value"}
			}
			for k < len(s) && isSpace(s[k]) {
				k++
			}
			if k < len(s) && s[k] != ',' {
				return nil, &FieldError{Source: "connection string", Field: key,
					Reason: fmt.Sprintf("unexpected %q after the closing quote", s[k])}
			}
			out = append(out, pair{key, b.String()})
			i = k + 1
			continue
		}
		e := k
		for e < len(s) && s[e] != ',' {
			e++
		}
		out = append(out, pair{key, strings.TrimSpace(s[k:e])})
		i = e + 1
	}
	return out, nil
}

func quoteValue(v string) string {
	if strings.ContainsAny(v, ",\"") || strings.TrimSpace(v) != v {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

func parseEndpoints(c *Config, v string) error {
	eps := strings.Split(v, "|")
	for i, ep := range eps {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			return fmt.Errorf("endpoint %d of %d is empty", i+1, len(eps))
		}
		if strings.ContainsAny(ep, ", \t\r\n") {
			return fmt.Errorf("endpoint %q contains a comma or space", ep)
		}
		eps[i] = ep
	}
	c.Endpoints = eps
	return nil
}

const maxMillis = math.MaxInt64 / int64(time.Millisecond)

func parseMillis(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > maxMillis {
		return 0, fmt.Errorf("%q is not a whole number of milliseconds between 0 and %d", v, maxMillis)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func formatMillis(d time.Duration) string {
	if d.Milliseconds() == 0 {
		return ""
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func parseBytes(v string) (int, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%q is not a whole number of bytes between 0 and %d", v, math.MaxInt32)
	}
	return int(n), nil
}

func formatInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func formatBool(b bool) string {
	if b {
		return "true"
	}
	return ""
}
