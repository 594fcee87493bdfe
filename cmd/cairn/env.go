package main

import (
	"flag"
	"fmt"
	"strings"
)

// envPrefix starts every environment variable etcd reads as a flag.
const envPrefix = "ETCD_"

// envName is the variable etcd reads for a flag: "listen-client-urls" is
// ETCD_LISTEN_CLIENT_URLS.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// lookupEnv finds key in environ; like os.Getenv, the first entry wins.
func lookupEnv(environ []string, key string) (string, bool) {
	for _, kv := range environ {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// applyEnv sets each flag the command line left unset from its non-empty
// ETCD_* variable, as etcd's flags.SetFlagsFromEnv does:
//   - a variable for a flag also given on the command line is an error
//     (etcd: "conflicting environment variable is shadowed by
//     corresponding command-line flag"), even if the variable is empty;
//   - ETCD_VERSION is never read, with a warning;
//   - an ETCD_* variable that names no flag draws a warning.
func applyEnv(fs *flag.FlagSet, environ []string) (notices []string, err error) {
	onCmdline := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCmdline[f.Name] = true })

	byEnv := map[string]string{} // variable name -> flag name
	fs.VisitAll(func(f *flag.Flag) { byEnv[envName(f.Name)] = f.Name })

	seen := map[string]bool{}
	for _, kv := range environ {
		key, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, envPrefix) || seen[key] {
			continue
		}
		seen[key] = true
		name, ok := byEnv[key]
		switch {
		case key == envName("version"):
			if val != "" {
				notices = append(notices, fmt.Sprintf("cannot set special environment variable %s=%s; ignoring it", key, val))
			}
		case !ok:
			notices = append(notices, "unrecognized environment variable "+kv)
		case onCmdline[name]:
			return notices, fmt.Errorf("conflicting environment variable %s is shadowed by the command-line flag --%s (unset the variable or drop the flag)", key, name)
		case val == "":
		default:
			if err := fs.Set(name, val); err != nil {
				return notices, fmt.Errorf("invalid value %q for %s (flag --%s): %w", val, key, name, err)
			}
		}
	}
	return notices, nil
}
