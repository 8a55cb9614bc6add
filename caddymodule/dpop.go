package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/oauthgate/oauthgate/dpop"
)

// DPoPConfig tunes DPoP (RFC 9449) for the token endpoint and every
// oauth_protect of the app. DPoP is always available: a client that sends
// a proof to the token endpoint gets DPoP-bound tokens, and oauth_protect
// checks the proof of every request made with one. These options only
// tune the checks.
type DPoPConfig struct {
	// Algs are the accepted proof algorithms, asymmetric JWS algorithms
	// only (Ed25519 is RFC 9864's name for EdDSA with Ed25519). Default
	// ES256 ES384 EdDSA Ed25519 RS256 PS256.
	Algs []string `json:"algs,omitempty"`
	// MaxAge is how old a proof's iat may be, which is also how long its
	// jti is remembered. Default 60s.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// Leeway is how far ahead of this node's clock a proof's iat may be.
	// Default 5s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// ReplayEntries bounds each of the node's two replay caches (the token
	// endpoint's, and the one of requests with bound tokens, shared by
	// every oauth_protect and UserInfo): at most this many proofs per
	// max_age+leeway, about 50 bytes each, in two generations. Past it,
	// proofs are refused with 503 until the generation rotates (fail
	// closed). Default 1048576.
	ReplayEntries int `json:"replay_entries,omitempty"`
	// Nonce requires server nonces (RFC 9449 §8, §9). Default off.
	Nonce bool `json:"nonce,omitempty"`
	// NonceLifetime is how long a nonce is current (the previous one is
	// accepted one more lifetime). Default 5m.
	NonceLifetime caddy.Duration `json:"nonce_lifetime,omitempty"`
	// NonceSecret derives the nonces; nodes sharing it accept each other's.
	// Placeholders such as {env.DPOP_NONCE_SECRET} are replaced. Default:
	// random per process.
	NonceSecret string `json:"nonce_secret,omitempty"`
}

// dpopChecker builds the app's one proof checker (memory only: Provision
// may build it).
func (a *App) dpopChecker(repl *caddy.Replacer) (*dpop.Checker, error) {
	c := a.DPoP
	if c == nil {
		c = new(DPoPConfig)
	}
	for _, alg := range c.Algs {
		if !dpop.ValidAlg(alg) {
			return nil, fmt.Errorf("dpop algs: %q is not an asymmetric JWS algorithm", alg)
		}
	}
	if c.MaxAge < 0 || c.Leeway < 0 || c.NonceLifetime < 0 || c.ReplayEntries < 0 {
		return nil, fmt.Errorf("dpop: durations and replay_entries must not be negative")
	}
	cfg := dpop.Config{
		Algs: c.Algs, MaxAge: time.Duration(c.MaxAge), Leeway: time.Duration(c.Leeway),
		ReplayEntries: c.ReplayEntries,
	}
	if c.Nonce {
		cfg.Nonce = &dpop.NonceConfig{Lifetime: time.Duration(c.NonceLifetime), Secret: repl.ReplaceKnown(c.NonceSecret, "")}
	}
	return dpop.New(cfg)
}

// parseDPoP reads the global option's dpop block:
//
//	dpop {
//		algs <alg...>
//		max_age <duration>
//		leeway <duration>
//		replay_entries <n>
//		nonce [<secret>]
//		nonce_lifetime <duration>
//	}
func parseDPoP(d *caddyfile.Dispenser) (*DPoPConfig, error) {
	c := new(DPoPConfig)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch opt {
		case "algs":
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			c.Algs = append(c.Algs, args...)
		case "max_age", "leeway", "nonce_lifetime":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return nil, d.Errf("dpop %s %q: want a positive duration", opt, args[0])
			}
			*map[string]*caddy.Duration{"max_age": &c.MaxAge, "leeway": &c.Leeway, "nonce_lifetime": &c.NonceLifetime}[opt] = caddy.Duration(dur)
		case "replay_entries":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return nil, d.Errf("dpop replay_entries %q: want a positive number", args[0])
			}
			c.ReplayEntries = n
		case "nonce":
			if len(args) > 1 {
				return nil, d.ArgErr()
			}
			c.Nonce = true
			if len(args) == 1 {
				c.NonceSecret = args[0]
			}
		default:
			return nil, d.Errf("unrecognized dpop option %q", opt)
		}
	}
	return c, nil
}
