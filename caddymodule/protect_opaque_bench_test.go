package caddymodule

import (
	"strings"
	"testing"
)

// BenchmarkProtectOpaque is BenchmarkProtect with opaque access tokens
// (access_token_format opaque, yAppointment's prefix): in the steady state
// the token is found in the same verified-token cache as a JWT, so the
// figures should match BenchmarkProtect's; benchTokens' tokens are checked
// to be opaque, so the comparison cannot silently be JWT against JWT.
func BenchmarkProtectOpaque(b *testing.B) {
	p, app := benchApp(b, map[string]any{"access_token_format": "opaque", "access_token_prefix": "yapp_at_"})
	if tok := benchTokens(b, app, 1)[0]; !strings.HasPrefix(tok, "yapp_at_") || strings.Contains(tok, ".") {
		b.Fatalf("not an opaque token: %d bytes", len(tok))
	}
	runProtectBench(b, p, app)
}
