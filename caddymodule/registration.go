package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/oauthgate/oauthgate/authserver"
	"github.com/oauthgate/oauthgate/tokens"
)

// RegistrationConfig turns on dynamic client registration (RFC 7591) at
// <base_path>/register, with its management (RFC 7592) at
// <base_path>/register/<client_id>, and bounds what an app registering
// itself may get. Such an app is never first-party, owns no business and
// is shown to users as unverified on the consent and connected-apps pages.
type RegistrationConfig struct {
	// Mode is "off" (the default: no registration endpoint, none
	// advertised), "open" (anyone may register) or "token" (the request
	// must carry an initial access token as a bearer credential).
	Mode string `json:"mode,omitempty"`
	// InitialAccessTokens are the tokens of mode token, in clear text.
	// They are hashed when the configuration loads, but the text stays in
	// the JSON config: use a placeholder such as {env.REGISTRATION_TOKEN},
	// or InitialAccessTokenHashes.
	InitialAccessTokens []string `json:"initial_access_tokens,omitempty"`
	// InitialAccessTokenHashes are SHA-256 hashes of the tokens of mode
	// token, as `caddy oauthgate hash-secret` prints them.
	InitialAccessTokenHashes []string `json:"initial_access_token_hashes,omitempty"`
	// ClientTypes an app may register as: "public" (no secret, PKCE) and
	// "confidential" (a client secret). Default both.
	ClientTypes []string `json:"client_types,omitempty"`
	// GrantTypes an app may register for. Default authorization_code and
	// refresh_token; client_credentials only when listed.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scopes an app may register for, within third_party_scopes. Default:
	// all of third_party_scopes.
	Scopes []string `json:"scopes,omitempty"`
	// RateLimit is how many registration attempts one client address (an
	// IPv6 address as its /64) may make per RateWindow, counted on each
	// node. Default 10; -1: no limit.
	RateLimit int `json:"rate_limit,omitempty"`
	// RateWindow defaults to 1h.
	RateWindow caddy.Duration `json:"rate_window,omitempty"`
}

// registrationPolicy maps the app's registration settings to the
// authorization server's policy; nil when registration is off. Provision
// calls it, so a bad value fails there.
func (a *App) registrationPolicy(repl *caddy.Replacer) (*authserver.RegistrationPolicy, error) {
	rc := a.Registration
	if rc == nil || rc.Mode == "" || rc.Mode == "off" {
		return nil, nil
	}
	p := &authserver.RegistrationPolicy{
		ClientTypes: rc.ClientTypes, GrantTypes: rc.GrantTypes, Scopes: rc.Scopes,
		RateLimit: rc.RateLimit, RateWindow: time.Duration(rc.RateWindow),
	}
	if rc.RateLimit < -1 || rc.RateWindow < 0 {
		return nil, fmt.Errorf("registration: rate_limit wants a positive count or -1 (off), rate_window a positive duration")
	}
	for _, t := range rc.InitialAccessTokens {
		t = repl.ReplaceKnown(t, "")
		if len(t) < 32 {
			return nil, fmt.Errorf("registration: an initial access token must be at least 32 characters (it is a password for registering apps)")
		}
		p.InitialAccessTokenHashes = append(p.InitialAccessTokenHashes, tokens.HashSecret(t))
	}
	for _, h := range rc.InitialAccessTokenHashes {
		sum, err := tokens.ParseSecretHash(h)
		if err != nil {
			return nil, fmt.Errorf("registration: initial_access_token_hash: %w", err)
		}
		p.InitialAccessTokenHashes = append(p.InitialAccessTokenHashes, sum)
	}
	switch rc.Mode {
	case "open":
		if len(p.InitialAccessTokenHashes) > 0 {
			return nil, fmt.Errorf("registration: mode open takes no initial access token (use mode token)")
		}
	case "token":
		if len(p.InitialAccessTokenHashes) == 0 {
			return nil, fmt.Errorf("registration: mode token needs an initial_access_token or initial_access_token_hash")
		}
	default:
		return nil, fmt.Errorf("registration: mode %q is not one of off, open, token", rc.Mode)
	}
	return p, nil
}

// parseRegistration reads the registration option of the oauthgate block:
//
//	registration off|open
//	registration open|token {
//		initial_access_token <token>
//		initial_access_token_hash <sha256:hex>
//		client_types public|confidential...
//		grant_types <type...>
//		scopes <scope...>
//		rate_limit <n>|off [<window>]
//	}
func parseRegistration(d *caddyfile.Dispenser) (*RegistrationConfig, error) {
	rc := new(RegistrationConfig)
	if !d.NextArg() {
		return nil, d.Err("registration: want off, open or token")
	}
	rc.Mode = d.Val()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch opt {
		case "initial_access_token", "initial_access_token_hash":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			if opt == "initial_access_token" {
				rc.InitialAccessTokens = append(rc.InitialAccessTokens, args[0])
			} else {
				rc.InitialAccessTokenHashes = append(rc.InitialAccessTokenHashes, args[0])
			}
		case "client_types", "grant_types", "scopes":
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			switch opt {
			case "client_types":
				rc.ClientTypes = append(rc.ClientTypes, args...)
			case "grant_types":
				rc.GrantTypes = append(rc.GrantTypes, args...)
			default:
				rc.Scopes = append(rc.Scopes, args...)
			}
		case "rate_limit":
			if len(args) < 1 || len(args) > 2 || (args[0] == "off" && len(args) != 1) {
				return nil, d.ArgErr()
			}
			if args[0] == "off" {
				rc.RateLimit = -1
				continue
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return nil, d.Errf("registration rate_limit %q: want a positive number of registrations or off", args[0])
			}
			rc.RateLimit = n
			if len(args) == 2 {
				w, err := caddy.ParseDuration(args[1])
				if err != nil || w <= 0 {
					return nil, d.Errf("registration rate_limit window %q: want a positive duration", args[1])
				}
				rc.RateWindow = caddy.Duration(w)
			}
		default:
			return nil, d.Errf("unrecognized registration option %q", opt)
		}
	}
	switch rc.Mode {
	case "off", "open", "token":
	default:
		return nil, d.Errf("registration %q: want off, open or token", rc.Mode)
	}
	return rc, nil
}
