package client_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cairn-kv/cairn/client"
)

// FuzzParseConnectionString checks that the parser never panics, that it
// fails only with errors that name what is wrong, and that whatever it
// accepts survives a round trip through ConnectionString. Seeds live in
// testdata/fuzz/FuzzParseConnectionString; run with
//
//	go test ./client -run '^$' -fuzz FuzzParseConnectionString -fuzztime 30s
func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"",
		"Server=127.0.0.1:2379|127.0.0.1:22379,DialTimeout=5000,Username=u,Password=p",
		"DialKeepAliveTime=1,DialKeepAliveTimeout=2,MaxCallSendMsgSize=3,MaxCallRecvMsgSize=4,RejectOldCluster=t,PermitWithoutStream=F",
		`Username=u,Password=" a,""b"" "`,
		"server = a | b ,",
		`Password="unterminated`,
		"=x",
		",,,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := client.ParseConnectionString(s)
		if err != nil {
			var fe *client.FieldError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("ParseConnectionString(%q) error %v is not a *FieldError with a reason", s, err)
			}
			return
		}
		out := cfg.ConnectionString()
		back, err := client.ParseConnectionString(out)
		if err != nil {
			t.Fatalf("ParseConnectionString(%q) = %+v, formatted as %q, which fails: %v", s, cfg, out, err)
		}
		if !reflect.DeepEqual(cfg, back) {
			t.Fatalf("round trip of %q through %q:\ngot  %+v\nwant %+v", s, out, back, cfg)
		}
		if again := back.ConnectionString(); again != out {
			t.Fatalf("ConnectionString not stable: %q then %q", out, again)
		}
	})
}
