// Package embed is the library entry point to a Cairn member: build a Config,
// call Start, wait on Server.Ready, and Close when done.
//
//	cfg := embed.Config{Dir: t.TempDir()}
//	srv, err := embed.Start(cfg)
//	if err != nil { ... }
//	defer srv.Close()
//	<-srv.Ready()
//	endpoints := srv.ClientEndpoints() // e.g. "127.0.0.1:2379"
//
// The zero Config starts a single-member cluster on 127.0.0.1:2379 with its
// data in ./default.cairn.
package embed
