package main

import (
	"os"

	"go.etcd.io/etcd/etcdctl/v3/ctlv3"
)

// runCtl runs etcdctl 3.7 (its library package ctlv3, the code of the
// etcdctl binary) on args, the words after "cairn ctl", and returns only
// when etcdctl succeeds: every failure exits the process with etcdctl's own
// status and message. Like the etcdctl binary, it reads the command line
// from os.Args, ETCDCTL_* variables from the environment, and writes to the
// process's stdout and stderr; its default endpoint, 127.0.0.1:2379, is
// where a cairn member started without flags serves clients. Help and usage
// messages call it etcdctl, because it is.
func runCtl(args []string) {
	os.Args = append([]string{"etcdctl"}, args...)
	ctlv3.MustStart()
}
