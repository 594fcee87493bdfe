package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/cairn-kv/cairn/backup"
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
	}
	fmt.Fprintf(stderr, "cairn snapshot: unknown command %q\n%s", args[0], snapshotUsage)
	return 2
}

const snapshotUsage = `Usage: cairn snapshot status FILE [-w simple|json|table]

Reads a snapshot file in etcd's format (saved from Cairn or etcd with
"cairn ctl snapshot save" or "etcdctl snapshot save") and prints what
"etcdutl snapshot status" prints: hash, revision, total keys, total size
and storage version.
`

func runSnapshotStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn snapshot status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := "simple"
	fs.StringVar(&format, "w", "simple", "output format: simple, json or table")
	fs.StringVar(&format, "write-out", "simple", "output format: simple, json or table")
	// The file may come before or after the flags, as with etcdutl (cobra).
	var files []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
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
