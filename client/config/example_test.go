package config_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
	"github.com/cairn-kv/cairn/client/config"
)

type ServerConfig struct {
	Listen  string `json:"listen"`
	Workers int    `json:"workers"`
}

// Validate is called on every candidate value: a bad update is rejected
// and the last good value stays.
func (c *ServerConfig) Validate() error {
	if c.Workers < 1 {
		return errors.New("workers must be at least 1")
	}
	return nil
}

func ExampleBind() {
	srv, err := cairntest.StartServer() // a fresh in-process Cairn for the example
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	c, _ := client.New(client.Config{Endpoints: srv.Endpoints()})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c.Put(ctx, "/app/server.yaml", "listen: :8080\nworkers: 4\n")

	events := make(chan string, 10)
	b, err := config.Bind(ctx, c, "/app/server.yaml", config.Options[ServerConfig]{
		OnChange: func(old, new ServerConfig, rev int64) {
			events <- fmt.Sprintf("reloaded at %d: workers %d -> %d", rev, old.Workers, new.Workers)
		},
		OnReject: func(err error, rev int64) { events <- fmt.Sprintf("rejected %d: %v", rev, err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	fmt.Printf("%+v at %d\n", b.Current(), b.Revision())

	c.Put(ctx, "/app/server.yaml", "listen: :8080\nworkers: 8\n")
	fmt.Println(<-events)
	c.Put(ctx, "/app/server.yaml", "listen: :8080\nworkers: 0\n")
	fmt.Println(<-events)
	fmt.Printf("%+v at %d\n", b.Current(), b.Revision())
	// Output:
	// {Listen::8080 Workers:4} at 2
	// reloaded at 3: workers 4 -> 8
	// rejected 4: config: invalid value: /app/server.yaml: workers must be at least 1
	// {Listen::8080 Workers:8} at 3
}
