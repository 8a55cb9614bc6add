package caddymodule

import (
	"bytes"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/oauthgate/oauthgate/tokens"
)

// TestRegistrationPolicy: the option maps onto the authorization server's
// policy, a token placeholder read when the configuration loads and kept
// only as its hash.
func TestRegistrationPolicy(t *testing.T) {
	const tok = "registration-token-from-the-environment-0123456789"
	t.Setenv("OAUTHGATE_TEST_REG_TOKEN", tok)
	a := &App{Registration: &RegistrationConfig{Mode: "token", InitialAccessTokens: []string{"{env.OAUTHGATE_TEST_REG_TOKEN}"},
		InitialAccessTokenHashes: []string{tokens.FormatSecretHash(tokens.HashSecret("x"))},
		ClientTypes:              []string{"public"}, RateLimit: 3, RateWindow: caddy.Duration(time.Minute)}}
	p, err := a.registrationPolicy(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.InitialAccessTokenHashes) != 2 || !bytes.Equal(p.InitialAccessTokenHashes[0], tokens.HashSecret(tok)) ||
		!bytes.Equal(p.InitialAccessTokenHashes[1], tokens.HashSecret("x")) {
		t.Fatalf("hashes %x", p.InitialAccessTokenHashes)
	}
	if p.RateLimit != 3 || p.RateWindow != time.Minute || len(p.ClientTypes) != 1 {
		t.Fatalf("policy %+v", p)
	}
	for _, off := range []*RegistrationConfig{nil, {}, {Mode: "off"}} {
		a := &App{Registration: off}
		if p, err := a.registrationPolicy(caddy.NewReplacer()); p != nil || err != nil {
			t.Fatalf("%+v: policy %+v, %v; want off", off, p, err)
		}
	}
}
