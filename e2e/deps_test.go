package e2e

// The e2e tests run a Caddy binary that TestMain builds with `go build`,
// which go test's result cache cannot see. Linking the same modules into
// the test binary makes its cache key change whenever the code the binary
// runs changes, so a cached pass is never reported for code not tested.
import (
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/oauthgate/oauthgate"
)
