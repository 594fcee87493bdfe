// Package cairntest runs a real Cairn server in-process for tests: a
// single member on a free 127.0.0.1 port, with its data in a temporary
// directory, stopped and removed when the test ends.
//
//	func TestSomething(t *testing.T) {
//		srv := cairntest.Start(t)
//		c := srv.Client(t) // a *client.Client, closed by t.Cleanup
//		...
//		srv.Restart(t) // same data directory, same port: clients reconnect
//	}
//
// Proxy sits between a client and the server and can cut the connection,
// to test partitions without stopping the server.
//
// Unlike package client, this package imports the server (package embed),
// so importing it links all of Cairn into the test binary. Keep it to
// _test.go files and examples.
//
// The server is tuned for tests: 10 ms heartbeats and a 100 ms election
// timeout (so it is ready in a fraction of a second and the smallest
// lease TTL is 1 s), and no fsync (acknowledged writes survive Stop and
// Restart, which close it cleanly, but not a machine crash).
package cairntest
