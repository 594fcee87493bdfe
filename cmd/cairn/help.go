package main

import (
	"fmt"
	"io"
)

const usageText = `Usage:

  cairn [flags]
    Start a Cairn member.

  cairn ctl [etcdctl flags] <command> ...
    Run etcdctl 3.7.4, built in: every etcdctl command, flag and ETCDCTL_*
    variable; by default it talks to 127.0.0.1:2379, where a member started
    without flags serves clients. 'cairn ctl --help' lists its commands.

  cairn bench [flags] <workload> ...
    Load an etcd v3 endpoint (Cairn or etcd), as etcd's benchmark tool.

  cairn snapshot status|restore <file> ...
    Describe a backup in etcd's format, or restore it into a new data dir,
    as etcdutl does ('cairn snapshot' lists the flags).

  cairn migrate --from-etcd-data-dir <dir> --data-dir <newdir> ...
    Build a Cairn data dir from a stopped etcd member's data dir.

  cairn discovery new --size N --endpoint URL [--v3] ...
    Make a discovery token on a v2 keys API server (prints the --discovery
    URL) or, with --v3, on an etcd or Cairn (prints the --discovery-token),
    as discovery.etcd.io did ('cairn discovery' lists the flags).

  cairn --version
    Print the etcd API version Cairn implements, in etcd's format, and
    Cairn's own version.

  cairn -h | --help
    Print this help.

  cairn --config-file <path>
    Read the configuration from an etcd YAML file; other flags and ETCD_*
    environment variables are then ignored.

Cairn takes the flags of etcd 3.7, and also the experimental-* flags of
etcd 3.6, which etcd 3.7 refuses, with a deprecation warning naming the new
flag. Each flag may also be set by an environment variable: --some-flag by
ETCD_SOME_FLAG. Flags and feature gates marked (ignored) are accepted and
type-checked but have no effect yet; the server logs each one it is given.
`

// printHelp writes the usage and every flag, grouped as etcd's --help is.
func printHelp(w io.Writer) {
	fmt.Fprint(w, usageText)
	for _, g := range flagGroups {
		if g.hidden {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, sp := range g.specs {
			fmt.Fprintf(w, "  --%s", sp.name)
			if sp.def != "" {
				fmt.Fprintf(w, " '%s'", sp.def)
			}
			note := ""
			if sp.set == nil {
				note = " (ignored)"
			}
			fmt.Fprintf(w, "\n    %s%s\n", sp.help, note)
		}
	}
}
