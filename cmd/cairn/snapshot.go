package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-kv/cairn/backup"
	"github.com/cairn-kv/cairn/embed"
)

// runSnapshot is `cairn snapshot SUBCOMMAND`, etcdutl's snapshot commands
// for files in etcd's snapshot format (Cairn's backups and etcd's alike).
// Status 2 for a malformed command line, 1 when the command fails.
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, snapshotUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "status":
		return runSnapshotStatus(args[1:], stdout, stderr)
	case "restore":
		return runSnapshotRestore(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "cairn snapshot: unknown command %q\n%s", args[0], snapshotUsage)
	return 2
}

const snapshotUsage = `Usage:
  cairn snapshot status FILE [-w simple|json|table]
  cairn snapshot restore FILE --data-dir DIR [--name NAME] [--initial-cluster NAME=URL,...]
      [--initial-cluster-token TOKEN] [--initial-advertise-peer-urls URL,...]
      [--skip-hash-check] [--bump-revision N --mark-compacted]

Snapshot files are in etcd's format, saved from Cairn or etcd with
"cairn ctl snapshot save" or "etcdctl snapshot save".

status prints what "etcdutl snapshot status" prints: hash, revision, total
keys, total size and storage version.

restore builds a new Cairn data dir from a snapshot of Cairn or etcd, as
"etcdutl snapshot restore" builds an etcd one: every revision the file
keeps, leases with their TTLs, and a fresh membership from the flags (same
flags and defaults as etcdutl). Then start cairn with the same --name,
--initial-cluster and --initial-cluster-token on that data dir.
`

func runSnapshotStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn snapshot status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := "simple"
	fs.StringVar(&format, "w", "simple", "output format: simple, json or table")
	fs.StringVar(&format, "write-out", "simple", "output format: simple, json or table")
	// The file may come before or after the flags, as with etcdutl (cobra).
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "Error: snapshot filename is required\n")
		return 2
	}
	if format != "simple" && format != "json" && format != "table" {
		fmt.Fprintf(stderr, "Error: unsupported output format %q (want simple, json or table)\n", format)
		return 2
	}
	st, err := backup.ReadStatus(files[0])
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	row := []string{fmt.Sprintf("%x", st.Hash), fmt.Sprint(st.Revision), fmt.Sprint(st.TotalKey), humanBytes(uint64(st.TotalSize)), st.Version}
	switch format {
	case "json":
		b, err := json.Marshal(st)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
	case "table":
		writeTable(stdout, []string{"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION"}, row)
	default:
		fmt.Fprintln(stdout, strings.Join(row, ", "))
	}
	return 0
}

// humanBytes formats n in SI units as etcdutl does (go-humanize's Bytes:
// "2.1 MB", "617 kB", "7 B").
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	sizes := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, e)*10+0.5) / 10
	f := "%.0f %s"
	if val < 10 {
		f = "%.1f %s"
	}
	return fmt.Sprintf(f, val, sizes[int(e)])
}

// writeTable prints one header row and one data row in a plain box.
func writeTable(w io.Writer, hdr, row []string) {
	widths := make([]int, len(hdr))
	for i := range hdr {
		widths[i] = max(len(hdr[i]), len(row[i]))
	}
	line := func() {
		for _, n := range widths {
			fmt.Fprint(w, "+", strings.Repeat("-", n+2))
		}
		fmt.Fprintln(w, "+")
	}
	cells := func(c []string, right bool) {
		for i, s := range c {
			if right {
				fmt.Fprintf(w, "| %*s ", widths[i], s)
			} else {
				fmt.Fprintf(w, "| %-*s ", widths[i], s)
			}
		}
		fmt.Fprintln(w, "|")
	}
	line()
	cells(hdr, false)
	line()
	cells(row, true)
	line()
}

// restoreFlags are etcdutl snapshot restore's flags, with its defaults.
type restoreFlags struct {
	dataDir, name, initialCluster, token, peerURLs string
	skipHashCheck, markCompacted                   bool
	bumpRevision                                   uint64
}

func (f *restoreFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "", "Path to the output data directory (default: NAME.cairn)")
	fs.StringVar(&f.name, "name", embed.DefaultName, "Human-readable name for this member")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "Initial cluster configuration for restore bootstrap (default: NAME=http://localhost:2380)")
	fs.StringVar(&f.token, "initial-cluster-token", embed.DefaultInitialClusterToken, "Initial cluster token for the cluster during restore bootstrap")
	fs.StringVar(&f.peerURLs, "initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster")
	fs.BoolVar(&f.skipHashCheck, "skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)")
	fs.Uint64Var(&f.bumpRevision, "bump-revision", 0, "How much to increase the latest revision after restore")
	fs.BoolVar(&f.markCompacted, "mark-compacted", false, "Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)")
}

// parseArgs parses flags and positional arguments in any order, as cobra.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// config turns the flags into a restore configuration.
func (f *restoreFlags) config(file string) (backup.RestoreConfig, error) {
	if f.dataDir == "" {
		f.dataDir = f.name + ".cairn"
	}
	if f.initialCluster == "" {
		f.initialCluster = f.name + "=" + f.peerURLs
	}
	initial, err := embed.ParseInitialCluster(f.initialCluster)
	if err != nil {
		return backup.RestoreConfig{}, fmt.Errorf("--initial-cluster: %w", err)
	}
	cluster := map[string][]string{}
	for name, urls := range initial {
		for _, u := range urls {
			cluster[name] = append(cluster[name], u.String())
		}
	}
	if mine, ok := cluster[f.name]; ok && strings.Join(mine, ",") != f.peerURLs {
		return backup.RestoreConfig{}, fmt.Errorf("--initial-cluster has %s=%s but --initial-advertise-peer-urls is %s", f.name, strings.Join(mine, ","), f.peerURLs)
	}
	return backup.RestoreConfig{
		SnapshotPath: file, DataDir: f.dataDir, Name: f.name,
		InitialCluster: cluster, InitialClusterToken: f.token,
		SkipHashCheck: f.skipHashCheck, RevisionBump: f.bumpRevision, MarkCompacted: f.markCompacted,
	}, nil
}

func runSnapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn snapshot restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f restoreFlags
	f.register(fs)
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "Error: snapshot path required")
		return 2
	}
	return restore(f, files[0], stdout, stderr)
}

func restore(f restoreFlags, file string, stdout, stderr io.Writer) int {
	cfg, err := f.config(file)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	info, err := backup.Restore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored snapshot %s into %s: revision %d (compacted %d), %d versions, %d leases; member %x of cluster %x\n",
		file, cfg.DataDir, info.Revision, info.Compacted, info.Versions, info.Leases, info.MemberID, info.ClusterID)
	return 0
}

const migrateUsage = `Usage: cairn migrate --from-etcd-data-dir DIR --data-dir NEWDIR [restore flags]

Builds a Cairn data dir from a stopped etcd member's data dir (its
member/snap/db), as "cairn snapshot restore --skip-hash-check" would from a
copy of that file. Stop etcd cleanly first (SIGTERM): its db then holds
every applied write. A db that a running etcd holds is refused. The restore
flags are those of "cairn snapshot restore".
`

// runMigrate is `cairn migrate --from-etcd-data-dir DIR ...`.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateUsage) }
	var f restoreFlags
	f.register(fs)
	var from string
	fs.StringVar(&from, "from-etcd-data-dir", "", "the data dir of a stopped etcd member")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if from == "" || len(rest) != 0 {
		fmt.Fprint(stderr, "Error: --from-etcd-data-dir is required and takes no other arguments\n"+migrateUsage)
		return 2
	}
	db := filepath.Join(from, "member", "snap", "db")
	if _, err := os.Stat(db); err != nil {
		fmt.Fprintf(stderr, "Error: %s is not an etcd data dir: %v\n", from, err)
		return 1
	}
	f.skipHashCheck = true // a live db file has no SHA-256 trailer
	return restore(f, db, stdout, stderr)
}
