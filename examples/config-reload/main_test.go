package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestEmbeddedDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-embedded"}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	want := `stored the default configuration at /examples/config-reload/app.json
loaded revision 2: greeting="hello" workers=2
applied revision 3: greeting="bonjour" workers=4
rejected revision 4 (unexpected EOF); keeping the last good configuration
rejected revision 5 (workers must be between 1 and 64, not 0); keeping the last good configuration
applied revision 6: greeting="hola" workers=8
running with revision 6: greeting="hola" workers=8
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
