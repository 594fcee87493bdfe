package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-kv/cairn/bench"
)

// benchInvocation is what one `cairn bench` command line asks for.
type benchInvocation struct {
	cfg     bench.Config
	json    bool // one JSON object on stdout instead of text
	precise bool // latencies in microseconds
	// help is set by -h or --help; helpFor is the command it was given
	// after, "" for the global help.
	help    bool
	helpFor string
}

// runBench is `cairn bench ARGS`: it parses ARGS, runs the load and prints
// the result. Status 2 for a malformed command line, 1 when the run could
// not start, 0 otherwise (failed requests are reported, not fatal).
func runBench(args []string, stdout, stderr io.Writer) int {
	inv, err := parseBench(args)
	if err != nil {
		fmt.Fprintf(stderr, "cairn bench: %v\nRun 'cairn bench --help' for usage.\n", err)
		return 2
	}
	if inv.help {
		printBenchHelp(stdout, inv.helpFor)
		return 0
	}
	// SIGINT or SIGTERM ends the run early; what was done is still reported.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, inv.cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cairn bench: %v\n", err)
		return 1
	}
	if inv.json {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout, inv.precise)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn bench: %v\n", err)
		return 1
	}
	return 0
}

// parseBench parses `cairn bench [global flags] COMMAND [flags] [args]`.
// As in etcd's tool, global flags may also follow the command, and flags
// and arguments may be mixed after it.
func parseBench(args []string) (benchInvocation, error) {
	var inv benchInvocation
	global := newBenchFlagSet("", &inv)
	rest, err := parseInterspersed(global, args, true)
	if errors.Is(err, flag.ErrHelp) {
		return benchInvocation{help: true}, nil
	}
	if err != nil {
		return inv, err
	}
	if len(rest) == 0 {
		return inv, errors.New("no command; want one of " + strings.Join(bench.Commands, ", "))
	}
	cmd := rest[0]
	if benchCommandFlags[cmd] == nil {
		return inv, fmt.Errorf("unknown command %q; want one of %s", cmd, strings.Join(bench.Commands, ", "))
	}
	inv.cfg.Command = cmd
	fs := newBenchFlagSet(cmd, &inv)
	pos, err := parseInterspersed(fs, rest[1:], false)
	if errors.Is(err, flag.ErrHelp) {
		return benchInvocation{help: true, helpFor: cmd}, nil
	}
	if err != nil {
		return inv, fmt.Errorf("%s: %w", cmd, err)
	}
	switch {
	case cmd == bench.CmdRange && (len(pos) < 1 || len(pos) > 2):
		return inv, fmt.Errorf("range: want KEY [END], got %d arguments", len(pos))
	case cmd == bench.CmdRange:
		inv.cfg.Key = pos[0]
		if len(pos) == 2 {
			inv.cfg.End = pos[1]
		}
	case len(pos) > 0:
		return inv, fmt.Errorf("%s: unexpected argument %q", cmd, pos[0])
	}
	inv.cfg.EnsureDefaults()
	if err := inv.cfg.Validate(); err != nil {
		return inv, errors.New(strings.TrimPrefix(err.Error(), "bench: "))
	}
	return inv, nil
}

// parseInterspersed parses flags anywhere in args and returns the other
// arguments in order; everything after "--" is an argument. With
// stopAtArg, it stops at the first argument and returns it and all that
// follow unparsed.
func parseInterspersed(fs *flag.FlagSet, args []string, stopAtArg bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			return pos, nil
		}
		if len(left) < len(args) && args[len(args)-len(left)-1] == "--" {
			return append(pos, left...), nil // flag stopped at "--"
		}
		if stopAtArg {
			return append(pos, left...), nil
		}
		pos = append(pos, left[0])
		args = left[1:]
	}
}

// benchCommandFlags registers, for each command, the flags it takes besides
// the global ones; d holds the defaults.
var benchCommandFlags = map[string]func(fs *flag.FlagSet, c *bench.Config, d bench.Config){
	bench.CmdPut: func(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
		keyValueFlags(fs, c, d)
	},
	bench.CmdRange: func(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
		fs.StringVar(&c.Consistency, "consistency", d.Consistency, "Linearizable (l) or serializable (s).")
		fs.Int64Var(&c.Limit, "limit", d.Limit, "Most keys one range returns (0: no limit).")
		fs.BoolVar(&c.Stream, "stream", d.Stream, "Read through KV.RangeStream (etcd 3.7) instead of Range.")
	},
	bench.CmdTxnPut: func(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
		keyValueFlags(fs, c, d)
		fs.IntVar(&c.TxnOps, "txn-ops", d.TxnOps, "Puts per transaction.")
	},
	bench.CmdTxnMixed: func(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
		keyValueFlags(fs, c, d)
		fs.Float64Var(&c.RWRatio, "rw-ratio", d.RWRatio, "Reads per write: 9 is 90% reads and 10% writes; each is a transaction of one get or one put.")
		fs.StringVar(&c.Consistency, "consistency", d.Consistency, "Reads linearizable (l) or serializable (s).")
	},
	bench.CmdWatch: func(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
		fs.IntVar(&c.Watchers, "watchers", d.Watchers, "Watchers, all on one key.")
		fs.IntVar(&c.Streams, "streams", d.Streams, "gRPC watch streams the watchers are spread over.")
		fs.IntVar(&c.Total, "puts", pick(c.Total, d.Total), "Puts to the watched key (the same as --total).")
		fs.IntVar(&c.KeySize, "key-size", d.KeySize, "Length of the watched key, in bytes.")
		fs.IntVar(&c.ValSize, "val-size", d.ValSize, "Length of each value, in bytes.")
	},
	bench.CmdLeaseKeepalive: func(*flag.FlagSet, *bench.Config, bench.Config) {},
}

func keyValueFlags(fs *flag.FlagSet, c *bench.Config, d bench.Config) {
	fs.IntVar(&c.KeySize, "key-size", d.KeySize, "Length of each key, in bytes (keys are zero-padded decimal numbers).")
	fs.IntVar(&c.ValSize, "val-size", d.ValSize, "Length of each value, in bytes.")
	fs.IntVar(&c.KeySpaceSize, "key-space-size", d.KeySpaceSize, "Number of distinct keys.")
	fs.BoolVar(&c.SequentialKeys, "sequential-keys", false, "Use keys 0, 1, 2... (mod --key-space-size) instead of random ones.")
}

// newBenchFlagSet returns a flag set with the global flags and, when cmd is
// not "", cmd's own.
func newBenchFlagSet(cmd string, inv *benchInvocation) *flag.FlagSet {
	var d bench.Config
	d.EnsureDefaults()
	c := &inv.cfg
	fs := flag.NewFlagSet("cairn bench "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.Endpoints == nil {
		c.Endpoints = []string{"127.0.0.1:2379"}
	}
	fs.Var(&endpointsFlag{list: &c.Endpoints}, "endpoints", "Comma-separated client endpoints (host:port or URL).")
	fs.IntVar(&c.Conns, "conns", pick(c.Conns, d.Conns), "gRPC connections.")
	fs.IntVar(&c.Clients, "clients", pick(c.Clients, d.Clients), "Concurrent clients, spread over the connections.")
	fs.IntVar(&c.Total, "total", pick(c.Total, d.Total), "Requests in all (for watch: puts).")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "Requests per second over all clients (0: unlimited).")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", pick(c.DialTimeout, d.DialTimeout), "Time allowed to connect.")
	fs.BoolVar(&c.TargetLeader, "target-leader", c.TargetLeader, "Send every request to the leader's endpoint.")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "Stop the run after this long and report what was done (0: no limit).")
	if inv.cfg.Progress == 0 && cmd == "" {
		c.Progress = time.Second
	}
	fs.DurationVar(&c.Progress, "progress", c.Progress, "Interval of progress lines on stderr (0: none).")
	fs.StringVar(&c.CACert, "cacert", c.CACert, "CA bundle that verifies the servers' certificates (TLS).")
	fs.StringVar(&c.Cert, "cert", c.Cert, "Client certificate file (TLS).")
	fs.StringVar(&c.CertKey, "key", c.CertKey, "Client key file (TLS).")
	fs.StringVar(&c.User, "user", c.User, "Authenticate as name:password (auth).")
	fs.BoolVar(&inv.precise, "precise", inv.precise, "Print latencies in microseconds.")
	fs.BoolVar(&inv.json, "json", inv.json, "Print one JSON object instead of text.")
	if cmd != "" {
		benchCommandFlags[cmd](fs, c, d)
	}
	return fs
}

// pick returns v unless it is zero, then def: a flag registered a second
// time keeps the value the first parse gave it.
func pick[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// endpointsFlag is a comma-separated list; the first use replaces the
// default, later uses add to it.
type endpointsFlag struct {
	list *[]string
	set  bool
}

func (f *endpointsFlag) String() string {
	if f == nil || f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f *endpointsFlag) Set(s string) error {
	if !f.set {
		*f.list, f.set = nil, true
	}
	for _, ep := range strings.Split(s, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			*f.list = append(*f.list, ep)
		}
	}
	if len(*f.list) == 0 {
		return errors.New("no endpoint")
	}
	return nil
}

// printBenchHelp prints the usage of cmd, or of the whole tool when cmd is "".
func printBenchHelp(w io.Writer, cmd string) {
	var inv benchInvocation
	if cmd == "" {
		fmt.Fprintf(w, "Usage: cairn bench [flags] COMMAND [command flags] [args]\n\n"+
			"Load generator for any etcd v3 API endpoint, in the style of etcd's benchmark tool.\n\n"+
			"Commands:\n"+
			"  put               put --total keys\n"+
			"  range KEY [END]   read KEY (or [KEY, END))\n"+
			"  txn-put           transactions of --txn-ops puts\n"+
			"  txn-mixed         transactions of one get or one put, --rw-ratio reads per write\n"+
			"  watch             --watchers watchers on one key receive --puts puts; reports event delay\n"+
			"  lease-keepalive   each client grants a lease, then renews it --total times in all\n\n"+
			"Global flags:\n")
		printFlags(w, newBenchFlagSet("", &inv))
		fmt.Fprintln(w, "\nRun 'cairn bench COMMAND --help' for a command's flags.")
		return
	}
	fmt.Fprintf(w, "Usage: cairn bench [flags] %s [flags]", cmd)
	if cmd == bench.CmdRange {
		fmt.Fprint(w, " KEY [END]")
	}
	fmt.Fprintf(w, "\n\nFlags of %s (global flags too):\n", cmd)
	global := map[string]bool{}
	newBenchFlagSet("", &benchInvocation{}).VisitAll(func(f *flag.Flag) { global[f.Name] = true })
	fs := newBenchFlagSet(cmd, &inv)
	own := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if !global[f.Name] {
			own.Var(f.Value, f.Name, f.Usage)
		}
	})
	printFlags(w, own)
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%-18s %s%s\n", f.Name, f.Usage, def)
	})
}
