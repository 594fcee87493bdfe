package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-kv/cairn/embed"
)

// invocation is what one command line asks cairn to do.
type invocation struct {
	// cfg is the member to start, defaulted and validated; nil when help
	// or version is asked for.
	cfg     *embed.Config
	help    bool // -h, -help or --help
	version bool // --version
	// notices are warnings for stderr: unrecognized ETCD_* variables,
	// deprecated flags, a config file that overrides flags.
	notices []string
}

// usageError is a malformed command line: an unknown flag, a value of the
// wrong type, a missing value. etcd exits 2 for these, 1 for other errors.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// setting is one flag the user set explicitly, from any source.
type setting struct {
	sp  *spec
	val parsed
}

// parseConfig turns etcd 3.6 command-line arguments (without the program
// name) and environment ("KEY=value" entries, as os.Environ) into an
// invocation. As in etcd, the sources are, in order: the command line;
// ETCD_* variables for flags the command line did not set; or, when
// --config-file or ETCD_CONFIG_FILE names a file, that file alone.
func parseConfig(args, environ []string) (invocation, error) {
	var inv invocation
	fs, values := newFlagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return invocation{help: true}, nil
		}
		return inv, parseError(err, values)
	}
	if fs.NArg() > 0 {
		return inv, fmt.Errorf("%q is not a valid flag", fs.Arg(0))
	}
	if values["version"].val.b {
		return invocation{version: true}, nil
	}

	path := values["config-file"].val.text
	if path == "" {
		path, _ = lookupEnv(environ, envName("config-file"))
	}
	var set []setting
	if path != "" {
		var err error
		if set, err = readConfigFile(path); err != nil {
			return inv, err
		}
		inv.notices = append(inv.notices, fmt.Sprintf(
			"loaded configuration file %s; other command-line flags and environment variables are ignored", path))
	} else {
		notices, err := applyEnv(fs, environ)
		inv.notices = append(inv.notices, notices...)
		if err != nil {
			return inv, err
		}
		fs.Visit(func(f *flag.Flag) {
			v := values[f.Name]
			set = append(set, setting{v.sp, v.val})
		})
	}

	if err := checkSettings(set, path == ""); err != nil {
		return inv, err
	}
	if err := refuseUnimplementedSecurity(set); err != nil {
		return inv, err
	}
	inv.notices = append(inv.notices, deprecations(set)...)
	cfg := &embed.Config{}
	for _, s := range set {
		if s.sp.set != nil {
			s.sp.set(cfg, s.val)
		} else {
			cfg.IgnoredFlags = append(cfg.IgnoredFlags, s.sp.name)
		}
	}
	// Cairn's own: the DNS server --discovery-srv asks (tests, split DNS).
	cfg.Discovery.SRVResolver, _ = lookupEnv(environ, "CAIRN_DISCOVERY_SRV_RESOLVER")
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return inv, err
	}
	inv.cfg = cfg
	return inv, nil
}

// flagValue adapts a spec to flag.Value, keeping the last value set.
type flagValue struct {
	sp  *spec
	val parsed
	// bad records the text and error of a failed Set, so the error can
	// name the flag the way this command spells it.
	bad    string
	badErr error
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.val.text
}

func (v *flagValue) Set(s string) error {
	p, err := parseText(v.sp, s)
	if err != nil {
		v.bad, v.badErr = s, err
		return err
	}
	v.val = p
	return nil
}

// IsBoolFlag lets "--flag" stand for "--flag=true", as Go's flag package does.
func (v *flagValue) IsBoolFlag() bool { return v.sp.kind == kindBool || v.sp.kind == kindLegacy }

// newFlagSet registers every spec on a fresh flag set that prints nothing.
func newFlagSet() (*flag.FlagSet, map[string]*flagValue) {
	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	values := make(map[string]*flagValue, len(specsByName))
	for name, sp := range specsByName {
		v := &flagValue{sp: sp}
		fs.Var(v, name, sp.help)
		values[name] = v
	}
	return fs, values
}

// parseError rewords an error of flag.FlagSet.Parse to name the flag as
// "--name".
func parseError(err error, values map[string]*flagValue) error {
	for _, v := range values {
		if v.badErr != nil {
			return usageError{fmt.Errorf("invalid value %q for flag --%s: %w", v.bad, v.sp.name, v.badErr)}
		}
	}
	msg := err.Error()
	for _, prefix := range []string{"flag provided but not defined: -", "flag needs an argument: -"} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			msg = prefix + "-" + strings.TrimPrefix(rest, "-")
		}
	}
	return usageError{errors.New(msg)}
}
