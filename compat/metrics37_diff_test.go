package compat

// etcd 3.7's new metrics and /version, compared with etcd 3.7.4.
//
// What it proves: after the same traffic, Cairn's /metrics has etcd 3.7's
// etcd_server_request_duration_seconds and
// etcd_debugging_server_watch_send_loop_* families with etcd's HELP and
// TYPE lines, the same bucket bounds, and the label sets that traffic
// makes; and /version answers byte for byte as etcd's. Values are not
// compared: they are latencies.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// metricFamily is what one family's lines show, less the values: its HELP
// and TYPE lines and, per series, the labels (le included).
type metricFamily struct {
	help, typ string
	series    []string // "name{labels}", sorted
}

// parseFamily picks family name's lines out of a /metrics page.
func parseFamily(page, name string) metricFamily {
	var f metricFamily
	for _, line := range strings.Split(page, "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "+name+" "):
			f.help = line
		case strings.HasPrefix(line, "# TYPE "+name+" "):
			f.typ = line
		case strings.HasPrefix(line, name+"_bucket{"), strings.HasPrefix(line, name+"_sum"), strings.HasPrefix(line, name+"_count"):
			f.series = append(f.series, line[:strings.LastIndexByte(line, ' ')])
		}
	}
	slices.Sort(f.series)
	return f
}

func TestMetrics37MatchEtcd(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBoth(t)
	pages := map[string]string{}
	for side, ep := range map[string]string{"etcd": etcdEps[0], "cairn": cairnEps[0]} {
		cli := newClient(t, []string{ep})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		wch := cli.Watch(ctx, "m/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		<-wch
		if _, err := cli.Put(ctx, "m/a", "1"); err != nil {
			t.Fatal(err)
		}
		if resp := <-wch; len(resp.Events) != 1 {
			t.Fatalf("%s: watch response %+v, want one event", side, resp)
		}
		if _, err := cli.Get(ctx, "m/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Txn(ctx).Then(clientv3.OpGet("m/a")).Commit(); err != nil {
			t.Fatal(err)
		}
		cancel()
		pages[side] = httpGet(t, "GET", "http://"+ep+"/metrics").body
	}
	// etcd reports storage 3.5.0 until its storage version settles.
	cluster.WaitEtcdSettled(t, etcdEps[0])
	if e, c := httpGet(t, "GET", "http://"+etcdEps[0]+"/version"), httpGet(t, "GET", "http://"+cairnEps[0]+"/version"); e != c {
		t.Errorf("GET /version:\netcd:  %+v\ncairn: %+v", e, c)
	}
	families := []string{
		"etcd_debugging_server_watch_send_loop_watch_stream_duration_seconds",
		"etcd_debugging_server_watch_send_loop_watch_stream_duration_per_event_seconds",
		"etcd_debugging_server_watch_send_loop_control_stream_duration_seconds",
		"etcd_debugging_server_watch_send_loop_progress_duration_seconds",
	}
	for _, name := range families {
		e, c := parseFamily(pages["etcd"], name), parseFamily(pages["cairn"], name)
		if len(e.series) == 0 {
			t.Errorf("%s: etcd's /metrics has no series of it: the oracle does not serve what this test compares", name)
		}
		if e.help != c.help || e.typ != c.typ || !slices.Equal(e.series, c.series) {
			t.Errorf("%s:\netcd:  %q %q %q\ncairn: %q %q %q", name, e.help, e.typ, e.series, c.help, c.typ, c.series)
		}
	}
	// The request family: etcd's own proposals at start (cluster version,
	// member attributes) add label sets Cairn may not have; the traffic's
	// must be in both, with the same buckets.
	name := "etcd_server_request_duration_seconds"
	e, c := parseFamily(pages["etcd"], name), parseFamily(pages["cairn"], name)
	if e.help != c.help || e.typ != c.typ {
		t.Errorf("%s: etcd %q %q, cairn %q %q", name, e.help, e.typ, c.help, c.typ)
	}
	for _, typ := range []string{"Put", "Range", "ReadonlyTxn"} {
		match := func(s string) bool { return strings.Contains(s, `success="true",type="`+typ+`"`) }
		var es, cs []string
		for _, s := range e.series {
			if match(s) {
				es = append(es, s)
			}
		}
		for _, s := range c.series {
			if match(s) {
				cs = append(cs, s)
			}
		}
		if len(es) == 0 || !slices.Equal(es, cs) {
			t.Errorf("%s, type %s:\netcd:  %q\ncairn: %q", name, typ, es, cs)
		}
	}
}
