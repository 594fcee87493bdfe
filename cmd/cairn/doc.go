// Command cairn runs a Cairn member, taking etcd 3.6's command line.
//
// Every flag of `etcd --help` is accepted, as are ETCD_* environment
// variables and etcd's YAML configuration file (--config-file). Flags that
// Cairn implements set fields of embed.Config; the others are type-checked,
// then listed in Config.IgnoredFlags so the server logs each as ignored.
// docs/flags.md lists which is which.
//
// Where the command line comes from, in etcd's order:
//
//  1. the command line (flags.go lists every flag; values.go checks values);
//  2. ETCD_* variables, for flags the command line left unset (env.go);
//  3. or, with --config-file or ETCD_CONFIG_FILE, the YAML file alone,
//     ignoring both of the above (configfile.go).
//
// parseConfig (parse.go) does all of this without side effects, so it is
// tested directly; main.go only prints, starts the server and waits for
// SIGINT or SIGTERM.
package main
