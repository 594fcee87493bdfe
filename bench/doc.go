// Package bench is a load generator for any server of the etcd v3 API,
// Cairn or etcd, in the shape of etcd's tools/benchmark: --conns gRPC
// connections shared by --clients concurrent clients issue --total
// requests, optionally paced to --rate requests per second.
//
//	cfg := bench.Config{Endpoints: []string{"127.0.0.1:2379"}, Command: bench.CmdPut, Conns: 100, Clients: 1000, Total: 100000}
//	res, err := bench.Run(ctx, cfg, os.Stderr) // progress lines go to os.Stderr
//	res.WriteText(os.Stdout, false)
//
// Each request's latency runs from just before the client call to just
// after it returns and is kept in a log-linear Histogram (below 0.8%
// relative error), so long runs need no memory per request. The watch
// command also measures, for every event, the delay from the moment the put
// that caused it was acknowledged to the moment a watcher received it.
//
// Keys are decimal numbers zero-padded to --key-size bytes ("00000042"),
// so a key the range command reads can be named on the command line; etcd's
// tool writes the same number of bytes in binary.
//
// Errors do not stop a run: each failed request is counted, and the first
// distinct messages are kept with their counts. A run stops early only when
// its context ends (Config.Timeout, or a signal), and then reports what was
// done.
package bench
