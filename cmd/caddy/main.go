// Command caddy is Caddy with the standard modules and oauthgate compiled in.
//
// It is the binary users run: `go run ./cmd/caddy run` starts the demo from
// the root Caddyfile.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/oauthgate/oauthgate/caddymodule"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
