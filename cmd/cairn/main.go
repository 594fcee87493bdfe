package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cairn-kv/cairn/embed"
	"github.com/cairn-kv/cairn/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ctl" { // etcdctl, built in
		runCtl(os.Args[2:])
		return
	}
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process around it: it returns the exit status.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bench" { // a load generator, not a member
		return runBench(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "snapshot" { // a file tool, not a member
		return runSnapshot(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "discovery" { // a discovery service client, not a member
		return runDiscovery(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "migrate" { // a file tool, not a member
		return runMigrate(args[1:], stdout, stderr)
	}
	inv, err := parseConfig(args, environ)
	for _, n := range inv.notices {
		fmt.Fprintf(stderr, "cairn: %s\n", n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn: %v\n", err)
		if errors.As(err, new(usageError)) {
			fmt.Fprintln(stderr, "Run 'cairn --help' for usage.")
			return 2 // as etcd, for a malformed command line
		}
		return 1
	}
	switch {
	case inv.help:
		printHelp(stdout)
		return 0
	case inv.version:
		printVersion(stdout)
		return 0
	}
	return serve(*inv.cfg, stderr)
}

// printVersion prints what `etcd --version` prints (etcd 3.7's
// etcdmain/config.go), with the etcd API release Cairn implements as
// "etcd Version:", so tools that parse etcd's lines keep working; Cairn's
// own release follows on a line of its own.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "etcd Version: %s\n", version.APIVersion)
	fmt.Fprintf(w, "Git SHA: %s\n", gitSHA())
	fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
	fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "Cairn Version: %s\n", version.Version)
}

// gitSHA is the short commit the binary was built from, when the Go
// toolchain stamped it (go build in a git checkout, without
// -buildvcs=false); etcd prints a placeholder when its build script did not
// set one, and so does Cairn.
func gitSHA() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "Not provided (built without VCS stamping)"
}

// serve runs a member until SIGINT or SIGTERM (status 0) or until it fails
// on its own (status 1), then closes it.
func serve(cfg embed.Config, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Start blocks until the member serves (for a cluster member, until a
	// quorum runs); a signal meanwhile ends the process at once: nothing
	// was acknowledged yet, and the data dir is crash-safe.
	type started struct {
		srv *embed.Server
		err error
	}
	startc := make(chan started, 1)
	go func() {
		srv, err := embed.Start(cfg)
		startc <- started{srv, err}
	}()
	var srv *embed.Server
	select {
	case st := <-startc:
		if st.err != nil {
			fmt.Fprintf(stderr, "cairn: %v\n", st.err)
			return 1
		}
		srv = st.srv
	case <-ctx.Done():
		select {
		case st := <-startc:
			// Start returned as the signal came (it may have announced
			// readiness already): shut down as usual.
			if st.err != nil {
				return 1
			}
			if err := st.srv.Close(); err != nil {
				fmt.Fprintf(stderr, "cairn: closing the server: %v\n", err)
				return 1
			}
			return 0
		case <-time.After(2 * time.Second):
		}
		fmt.Fprintln(stderr, "cairn: interrupted while starting")
		return 1
	}
	status := 0
	select {
	case <-ctx.Done():
	case err := <-srv.Err():
		fmt.Fprintf(stderr, "cairn: server stopped: %v\n", err)
		status = 1
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "cairn: closing the server: %v\n", err)
		status = 1
	}
	return status
}
