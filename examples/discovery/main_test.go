package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestEmbeddedDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-embedded"}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	want := `service a registered
service b registered
client: calls go round robin to [a b]
service b deregistered
client: calls go round robin to [a]
service c registered
client: calls go round robin to [a c]
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
