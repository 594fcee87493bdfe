package client_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/client"
)

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		in   string
		want client.Config
	}{
		{"", client.Config{}},
		{"Server=127.0.0.1:2379", client.Config{Endpoints: []string{"127.0.0.1:2379"}}},
		{
			"Server=127.0.0.1:2379|127.0.0.1:22379,DialTimeout=5000,DialKeepAliveTime=3000,DialKeepAliveTimeout=1000," +
				"MaxCallSendMsgSize=1048576,MaxCallRecvMsgSize=4194304,Username=u,Password=p,RejectOldCluster=true,PermitWithoutStream=1",
			client.Config{
				Endpoints:            []string{"127.0.0.1:2379", "127.0.0.1:22379"},
				DialTimeout:          5 * time.Second,
				DialKeepAliveTime:    3 * time.Second,
				DialKeepAliveTimeout: time.Second,
				MaxCallSendMsgSize:   1 << 20,
				MaxCallRecvMsgSize:   4 << 20,
				Username:             "u",
				Password:             "p",
				RejectOldCluster:     true,
				PermitWithoutStream:  true,
			},
		},
		// Keys are case-insensitive; spaces around keys, values and
		// endpoints are ignored; a trailing comma is fine.
		{" server = http://a:1 | http://b:2 , dialtimeout = 250 ,", client.Config{
			Endpoints: []string{"http://a:1", "http://b:2"}, DialTimeout: 250 * time.Millisecond}},
		// Quoted values keep commas, quotes and spaces.
		{`Username=u,Password=" a,""b"" "`, client.Config{Username: "u", Password: ` a,"b" `}},
		{`Username=u,Password=x=y`, client.Config{Username: "u", Password: "x=y"}},
		{"Username=,RejectOldCluster=false", client.Config{}},
	}
	for _, tt := range tests {
		got, err := client.ParseConnectionString(tt.in)
		if err != nil {
			t.Errorf("ParseConnectionString(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseConnectionString(%q)\ngot  %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	tests := []struct {
		in, field, reason string
	}{
		{"DialTimeout=5s", "DialTimeout", `"5s" is not a whole number of milliseconds`},
		{"DialTimeout=-1", "DialTimeout", "not a whole number of milliseconds"},
		{"DialTimeout=", "DialTimeout", "empty value"},
		{"DialKeepAliveTime=1e3", "DialKeepAliveTime", "milliseconds"},
		{"DialKeepAliveTimeout=99999999999999999999", "DialKeepAliveTimeout", "milliseconds"},
		{"MaxCallSendMsgSize=2GiB", "MaxCallSendMsgSize", "bytes"},
		{"MaxCallRecvMsgSize=4294967296", "MaxCallRecvMsgSize", "between 0 and 2147483647"},
		{"RejectOldCluster=yes", "RejectOldCluster", `"yes" is not true or false`},
		{"PermitWithoutStream=", "PermitWithoutStream", "empty value"},
		{"Server=", "Server", "empty value"},
		{"Server=a||b", "Server", "endpoint 2 of 3 is empty"},
		{`Server="a,b"`, "Server", "contains a comma or space"},
		{"Server=a b", "Server", "contains a comma or space"},
		{"Sever=a", "Sever", "unknown key (known: Server, DialTimeout"},
		{"Server=a,server=b", "Server", "given more than once"},
		{"Server", "Server", "missing '='"},
		{"Server=a,DialTimeout", "DialTimeout", "missing '='"},
		{"=a", "", "empty key before '=' at offset 0"},
		{`Password="abc`, "Password", "unterminated quoted value"},
		{`Password="a"b`, "Password", `unexpected 'b' after the closing quote`},
		{"Password=p", "Password", "set without a Username"},
	}
	for _, tt := range tests {
		_, err := client.ParseConnectionString(tt.in)
		var fe *client.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("ParseConnectionString(%q) error = %v, want a *FieldError", tt.in, err)
			continue
		}
		if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("ParseConnectionString(%q) error = %v, want field %q and reason containing %q", tt.in, err, tt.field, tt.reason)
		}
		if tt.field != "" && !strings.Contains(err.Error(), tt.field+": ") {
			t.Errorf("error %q does not name %s", err, tt.field)
		}
	}
}

func TestConnectionStringRoundTrip(t *testing.T) {
	cfg := client.Config{
		Endpoints:          []string{"a:1", "https://b:2"},
		DialTimeout:        1500 * time.Millisecond,
		MaxCallRecvMsgSize: 10,
		Username:           "user name",
		Password:           `p,"w" `,
		RejectOldCluster:   true,
	}
	s := cfg.ConnectionString()
	if want := `Server=a:1|https://b:2,DialTimeout=1500,MaxCallRecvMsgSize=10,Username=user name,Password="p,""w"" ",RejectOldCluster=true`; s != want {
		t.Fatalf("ConnectionString() = %s\nwant %s", s, want)
	}
	back, err := client.ParseConnectionString(s)
	if err != nil || !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   client.Config
		field string
	}{
		{client.Config{Endpoints: []string{""}}, "Endpoints[0]"},
		{client.Config{Endpoints: []string{"a", "b c"}}, "Endpoints[1]"},
		{client.Config{DialTimeout: -time.Second}, "DialTimeout"},
		{client.Config{DialKeepAliveTimeout: -1}, "DialKeepAliveTimeout"},
		{client.Config{MaxCallSendMsgSize: -1}, "MaxCallSendMsgSize"},
		{client.Config{Password: "p"}, "Password"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var fe *client.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tt.cfg, err, tt.field)
		}
		if _, err := client.New(tt.cfg); err == nil {
			t.Errorf("New(%+v) succeeded", tt.cfg)
		}
	}
	var zero client.Config
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	zero.EnsureDefaults()
	if !equal(zero.Endpoints, []string{"127.0.0.1:2379"}) || zero.DialTimeout != 5*time.Second {
		t.Fatalf("defaults = %+v", zero)
	}
}

func TestConfigFromLookup(t *testing.T) {
	env := map[string]string{
		"CAIRN_CONNECTION_STRING":  "Server=x:1,DialTimeout=100,Username=u",
		"CAIRN_ENDPOINTS":          "a:1, b:2|c:3",
		"CAIRN_DIAL_TIMEOUT":       "2000",
		"CAIRN_PASSWORD":           "secret",
		"CAIRN_REJECT_OLD_CLUSTER": "true",
		"CAIRN_USERNAME":           "", // empty: unset
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got, err := client.ConfigFromLookup(lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := client.Config{Endpoints: []string{"a:1", "b:2", "c:3"}, DialTimeout: 2 * time.Second,
		Username: "u", Password: "secret", RejectOldCluster: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ConfigFromLookup\ngot  %+v\nwant %+v", got, want)
	}

	for k, v := range map[string]string{
		"CAIRN_DIAL_KEEPALIVE_TIME":    "soon",
		"CAIRN_MAX_CALL_SEND_MSG_SIZE": "-5",
		"CAIRN_PERMIT_WITHOUT_STREAM":  "maybe",
		"CAIRN_ENDPOINTS":              "a,,b",
	} {
		_, err := client.ConfigFromLookup(func(n string) (string, bool) { return v, n == k })
		if err == nil || !strings.Contains(err.Error(), "environment: "+k+": ") {
			t.Errorf("%s=%s: error = %v, want one naming %s", k, v, err, k)
		}
	}
	_, err = client.ConfigFromLookup(func(n string) (string, bool) {
		return "DialTimeout=x", n == "CAIRN_CONNECTION_STRING"
	})
	if err == nil || !strings.Contains(err.Error(), "CAIRN_CONNECTION_STRING: DialTimeout: ") {
		t.Errorf("bad CAIRN_CONNECTION_STRING: error = %v", err)
	}
	if got := client.EnvVars(); len(got) != 14 || got[0] != "CAIRN_ENDPOINTS" {
		t.Errorf("EnvVars() = %q", got)
	}
}

func TestConnectAndNewFromEnv(t *testing.T) {
	t.Setenv("CAIRN_DIAL_TIMEOUT", "nope")
	if _, err := client.NewFromEnv(); err == nil || !strings.Contains(err.Error(), "CAIRN_DIAL_TIMEOUT") {
		t.Fatalf("NewFromEnv error = %v, want one naming CAIRN_DIAL_TIMEOUT", err)
	}
	if _, err := client.Connect("DialTimeout=soon"); err == nil || !strings.Contains(err.Error(), "DialTimeout") {
		t.Fatalf("Connect error = %v, want one naming DialTimeout", err)
	}
}
