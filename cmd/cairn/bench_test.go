package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/bench"
	"github.com/cairn-kv/cairn/embed"
)

func TestParseBench(t *testing.T) {
	var d bench.Config
	d.EnsureDefaults()
	d.Endpoints = []string{"127.0.0.1:2379"}
	d.Progress = time.Second
	with := func(cmd string, f func(c *bench.Config)) bench.Config {
		c := d
		c.Command = cmd
		if f != nil {
			f(&c)
		}
		return c
	}
	for _, tc := range []struct {
		args    []string
		want    bench.Config
		json    bool
		precise bool
		err     string // substring; "" means no error
	}{
		{args: []string{"put"}, want: with("put", nil)},
		{
			// etcd's documented put command line.
			args: strings.Fields("--endpoints=10.0.0.1:2379,10.0.0.2:2379 --conns=100 --clients=1000 put --key-size=8 --sequential-keys --total=100000 --val-size=256 --key-space-size 100000"),
			want: with("put", func(c *bench.Config) {
				c.Endpoints = []string{"10.0.0.1:2379", "10.0.0.2:2379"}
				c.Conns, c.Clients, c.Total = 100, 1000, 100000
				c.KeySize, c.ValSize, c.KeySpaceSize, c.SequentialKeys = 8, 256, 100000, true
			}),
		},
		{
			// Global flags after the command, flags after the arguments.
			args: strings.Fields("range foo zoo --consistency s --conns 2 --limit 10 --json --precise --rate 500 --stream"),
			want: with("range", func(c *bench.Config) {
				c.Key, c.End, c.Consistency, c.Limit, c.Conns, c.Rate, c.Stream = "foo", "zoo", "s", 10, 2, 500, true
			}),
			json: true, precise: true,
		},
		{args: []string{"range", "--", "-dash-key"}, want: with("range", func(c *bench.Config) { c.Key = "-dash-key" })},
		{
			args: strings.Fields("--endpoints a:1 --endpoints b:2 --total 7 watch --watchers 4 --streams 2"),
			want: with("watch", func(c *bench.Config) { c.Endpoints, c.Total, c.Watchers, c.Streams = []string{"a:1", "b:2"}, 7, 4, 2 }),
		},
		{args: strings.Fields("watch --puts 9"), want: with("watch", func(c *bench.Config) { c.Total = 9 })},
		{
			args: strings.Fields("--progress 0 --timeout 1m txn-mixed --rw-ratio 9 --key-space-size 1000"),
			want: with("txn-mixed", func(c *bench.Config) { c.Progress, c.Timeout, c.RWRatio, c.KeySpaceSize = 0, time.Minute, 9, 1000 }),
		},
		{args: strings.Fields("txn-put --txn-ops 4 --key-space-size 10"), want: with("txn-put", func(c *bench.Config) { c.TxnOps, c.KeySpaceSize = 4, 10 })},
		{args: strings.Fields("lease-keepalive --target-leader"), want: with("lease-keepalive", func(c *bench.Config) { c.TargetLeader = true })},
		{
			args: strings.Fields("--cacert ca.pem put --cert c.pem --key k.pem"),
			want: with("put", func(c *bench.Config) { c.CACert, c.Cert, c.CertKey = "ca.pem", "c.pem", "k.pem" }),
		},

		{args: nil, err: "no command"},
		{args: []string{"stm"}, err: `unknown command "stm"`},
		{args: []string{"range"}, err: "range: want KEY [END], got 0 arguments"},
		{args: strings.Fields("range a b c"), err: "got 3 arguments"},
		{args: strings.Fields("put extra"), err: `put: unexpected argument "extra"`},
		{args: strings.Fields("put --consistency s"), err: "flag provided but not defined: -consistency"},
		{args: strings.Fields("--conns x put"), err: `invalid value "x" for flag -conns`},
		{args: strings.Fields("range k --consistency x"), err: `--consistency: "x" is neither l`},
		{args: strings.Fields("put --key-space-size 1000 --key-size 2"), err: "--key-size: 2 bytes cannot hold the 3 decimal digits"},
		{args: strings.Fields("watch --watchers 2 --streams 3"), err: "--streams: 3 is not between 1 and --watchers (2)"},
		{args: strings.Fields("txn-put --txn-ops 3"), err: "--txn-ops: 3 is not between 1 and --key-space-size (1)"},
		{args: strings.Fields("--rate -1 put"), err: "--rate: -1 is negative"},
	} {
		inv, err := parseBench(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error got %v, want it to contain %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: error got %v, want none", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(inv.cfg, tc.want) {
			t.Errorf("%q:\n got  %+v\n want %+v", tc.args, inv.cfg, tc.want)
		}
		if inv.json != tc.json || inv.precise != tc.precise {
			t.Errorf("%q: json, precise got %v, %v, want %v, %v", tc.args, inv.json, inv.precise, tc.json, tc.precise)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--help"}, "  --conns "},
		{[]string{"bench", "range", "-h"}, "Usage: cairn bench [flags] range [flags] KEY [END]"},
		{[]string{"bench", "watch", "--help"}, "  --watchers "},
	} {
		var stdout, stderr bytes.Buffer
		if status := run(tc.args, nil, &stdout, &stderr); status != 0 {
			t.Errorf("%q: status got %d, want 0 (stderr %q)", tc.args, status, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%q: stdout got %q, want it to contain %q", tc.args, stdout.String(), tc.want)
		}
	}
	var stderr bytes.Buffer
	if status := run([]string{"bench", "put", "--bogus"}, nil, io.Discard, &stderr); status != 2 {
		t.Errorf("bench put --bogus: status got %d, want 2 (stderr %q)", status, stderr.String())
	}
}

// TestBenchSmoke runs every command briefly against an in-process member
// and checks the counts in its JSON output.
func TestBenchSmoke(t *testing.T) {
	local := []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
	srv, err := embed.Start(embed.Config{
		Dir:              filepath.Join(t.TempDir(), "data"),
		ListenClientURLs: local,
		ListenPeerURLs:   local,
		UnsafeNoFsync:    true,
		HeartbeatMs:      10,
		ElectionMs:       100,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start cairn: %v", err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close cairn: %v", err)
		}
	}()
	global := []string{"bench", "--endpoints", srv.ClientEndpoints()[0], "--conns", "2", "--clients", "8", "--json", "--progress", "0", "--timeout", "30s"}
	for _, tc := range []struct {
		args  string
		total int64
	}{
		{"put --total 300 --key-size 8 --val-size 64 --key-space-size 100 --sequential-keys", 300},
		{"put --total 200 --key-space-size 1000", 200},
		{"range 00000001 --total 300", 300},
		{"range 00000000 00000100 --consistency s --limit 10 --total 200", 200},
		{"range 00000000 00000100 --stream --total 100", 100},
		{"txn-put --total 200 --txn-ops 3 --key-space-size 100", 200},
		{"txn-mixed --total 300 --rw-ratio 9 --key-space-size 100 --consistency s", 300},
		{"lease-keepalive --total 300", 300},
		{"--rate 2000 watch --watchers 6 --streams 3 --puts 100", 100},
	} {
		args := append(append([]string{}, global...), strings.Fields(tc.args)...)
		var stdout, stderr bytes.Buffer
		if status := run(args, nil, &stdout, &stderr); status != 0 {
			t.Errorf("%s: status got %d, want 0; stderr %q", tc.args, status, stderr.String())
			continue
		}
		var res bench.Result
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Errorf("%s: output is not one JSON object: %v\n%s", tc.args, err, stdout.String())
			continue
		}
		if res.Done != tc.total || res.OK != tc.total || res.Errors != 0 || res.Latency.Count != tc.total {
			t.Errorf("%s: done, ok, errors, latency count got %d, %d, %d, %d, want %d, %d, 0, %d; errors %v",
				tc.args, res.Done, res.OK, res.Errors, res.Latency.Count, tc.total, tc.total, tc.total, res.ErrorMessages)
		}
		if res.RequestsPerSec <= 0 || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || len(res.Histogram) == 0 {
			t.Errorf("%s: got %.0f req/s, p50 %v ms, p99 %v ms, %d histogram bars; want positive, p99 >= p50, some bars",
				tc.args, res.RequestsPerSec, res.Latency.P50, res.Latency.P99, len(res.Histogram))
		}
		if w := res.Watch; strings.Contains(tc.args, "watch") {
			if w == nil || w.Expected != 6*tc.total || w.Received != w.Expected || w.EventLatency.Count != w.Expected || w.StreamErrors != 0 {
				t.Errorf("%s: watch result got %+v, want %d events received and measured, no stream errors", tc.args, w, 6*tc.total)
			}
		}
	}
}
