package embed

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd 3.7's request latency and watch send-loop histograms are served
// under etcd's names, labels and buckets, and follow the traffic.
func TestMetrics37(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WatchProgressNotifyInterval = 100 * time.Millisecond
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	wch := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	if resp := <-wch; !resp.Created {
		t.Fatalf("first watch response %+v, want created", resp)
	}
	const puts = 5
	for i := range puts {
		if _, err := cli.Put(ctx, fmt.Sprintf("w/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < puts; {
		resp := <-wch
		if resp.Err() != nil {
			t.Fatal(resp.Err())
		}
		got += len(resp.Events)
	}
	// A progress notification: the ticker ran at least once since.
	for resp := range wch {
		if resp.IsProgressNotify() {
			break
		}
	}
	if _, err := cli.Get(ctx, "w/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpGet("w/0")).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "w/0", clientv3.WithRev(2)); err == nil {
		t.Fatal("Get at a compacted revision succeeded")
	}

	m := scrape(t, "http://"+srv.ClientEndpoints()[0]+"/metrics")
	hist := func(name, labels string, minCount float64) {
		t.Helper()
		count, sum := name+"_count"+labels, name+"_sum"+labels
		expectSeries(t, m, count, fmt.Sprintf(">= %v", minCount), valueGE(minCount))
		// etcd's buckets: 1 ms doubling to 8.192 s, then +Inf.
		bucket := func(le string) string {
			if labels == "" {
				return fmt.Sprintf(`%s_bucket{le=%q}`, name, le)
			}
			return fmt.Sprintf(`%s_bucket%s,le=%q}`, name, labels[:len(labels)-1], le)
		}
		expectSeries(t, m, bucket("0.001"), "present", valueGE(0))
		expectSeries(t, m, bucket("8.192"), "present", valueGE(0))
		expectSeries(t, m, bucket("+Inf"), "the count", valueEq(m[count]))
		if _, extra := m[bucket("16.384")]; extra {
			t.Errorf("%s: a 16.384 bucket, beyond etcd's", name)
		}
		// Sane: finite, and no request here took 8 s on average.
		expectSeries(t, m, sum, "finite, below 8 s per observation", func(v float64) bool {
			return !math.IsInf(v, 0) && !math.IsNaN(v) && v >= 0 && v < 8*m[count]
		})
	}
	rd := "etcd_server_request_duration_seconds"
	hist(rd, `{success="true",type="Put"}`, puts)
	hist(rd, `{success="true",type="Range"}`, 1)
	hist(rd, `{success="false",type="Range"}`, 1)
	hist(rd, `{success="true",type="ReadonlyTxn"}`, 1)
	hist(rd, `{success="true",type="Compaction"}`, 1)
	sl := "etcd_debugging_server_watch_send_loop_"
	hist(sl+"watch_stream_duration_seconds", "", puts)
	hist(sl+"watch_stream_duration_per_event_seconds", "", puts)
	hist(sl+"control_stream_duration_seconds", "", 1)
	hist(sl+"progress_duration_seconds", "", 1)
}
