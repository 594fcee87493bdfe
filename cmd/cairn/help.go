package main

import (
	"fmt"
	"io"
)

const usageText = `Usage:

  cairn [flags]
    Start a Cairn member.

  cairn --version
    Print the version of Cairn and of the etcd API it implements.

  cairn -h | --help
    Print this help.

  cairn --config-file <path>
    Read the configuration from an etcd YAML file; other flags and ETCD_*
    environment variables are then ignored.

Cairn takes the flags of etcd 3.6. Each may also be set by an environment
variable: --some-flag by ETCD_SOME_FLAG. Flags marked (ignored) are accepted
and type-checked but have no effect yet; the server logs each one it is given.
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
