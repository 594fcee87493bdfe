// Package config binds a key, or every key under a prefix, to a typed
// configuration value that reloads itself when the keys change.
//
//	type AppConfig struct {
//		Greeting string `json:"greeting"`
//		Workers  int    `json:"workers"`
//	}
//
//	func (c *AppConfig) Validate() error {
//		if c.Workers < 1 { return errors.New("workers must be at least 1") }
//		return nil
//	}
//
//	b, err := config.Bind(ctx, c, "/app/config.json", config.Options[AppConfig]{
//		OnChange: func(old, new AppConfig, rev int64) { log.Printf("config %d: %+v", rev, new) },
//	})
//	cfg := b.Current()
//
// # Formats
//
// Values are JSON, or YAML when the key ends in .yaml or .yml (or as
// Options.Format says). Struct fields are matched by their encoding/json
// tags in both formats: YAML is read into generic values and then decoded
// as JSON would be. Options.Strict rejects fields the struct does not have.
//
// A prefix binding (BindPrefix) reads every key under the prefix as one
// document each, merges them in key order (a later key's fields override
// an earlier one's, nested objects merge), and decodes the result: for
// example /app/config/00-defaults.yaml and /app/config/50-prod.json.
//
// # Validation and rejected updates
//
// Every candidate value — the first one included — must decode, pass
// T's own Validate() error method if it has one, and pass
// Options.Validate. An update that does not is rejected: Current keeps the
// last good value, Options.OnReject and the logs say why, and Rejected
// returns the error until a good update arrives. A deleted key is an
// update to "absent", which is rejected unless Options.Default is set.
//
// Updates are applied per revision, so a Txn that changes several keys of
// a prefix is seen as one update. Reloads survive disconnects, server
// restarts and compactions (see client.Watch).
package config
