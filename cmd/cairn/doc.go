// Command cairn runs a Cairn member, taking etcd 3.7's command line; `cairn
// ctl` is etcdctl 3.7 (ctl.go) and `cairn bench` a load generator.
//
// Every flag of `etcd --help` is accepted, with etcd 3.6's experimental-*
// names that etcd 3.7 removed, as are ETCD_* environment
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
