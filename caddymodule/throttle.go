package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/oauthgate/oauthgate/throttle"
)

// ThrottleConfig tunes how failed sign-ins (built-in directory) and failed
// client authentications (token, revocation, introspection endpoints) are
// throttled. After the threshold of failures within Forget, the account,
// client id or client address is locked: attempts are refused with HTTP
// 429 and Retry-After, without checking the credentials. The first lock
// lasts Lock; each further failure once a lock has ended doubles it, up to
// LockMax. Every node of a cluster shares the counts through the store.
type ThrottleConfig struct {
	// Disabled turns all throttling off.
	Disabled bool `json:"disabled,omitempty"`
	// AccountFailures is how many failed sign-ins of one e-mail address
	// (whether an account has it or not) lock it. Default 5; -1: accounts
	// are not throttled.
	AccountFailures int `json:"account_failures,omitempty"`
	// ClientFailures is how many failed authentications of one client_id
	// (registered or not) lock it. Default 5; -1: client ids are not
	// throttled.
	ClientFailures int `json:"client_failures,omitempty"`
	// AddressFailures is how many different e-mails or client ids
	// failing from one client address (IPv4, or IPv6 /64) lock it: the
	// address is charged when one's count starts, not for its repeats.
	// Counted apart for sign-in and for client authentication. The
	// address is Caddy's client IP, which honours the server's
	// trusted_proxies. Default 20; -1: addresses are not throttled.
	AddressFailures int `json:"address_failures,omitempty"`
	// Lock is the first lock. Default 1m; at least 1s.
	Lock caddy.Duration `json:"lock,omitempty"`
	// LockMax caps the doubling lock. Default 15m (or Lock, if longer).
	LockMax caddy.Duration `json:"lock_max,omitempty"`
	// Forget is how long after its last failure a count starts again from
	// zero; at least LockMax. Default 1h (or LockMax, if longer).
	Forget caddy.Duration `json:"forget,omitempty"`
}

// throttleConfig maps the app's settings to the throttle's; nil when
// throttling is off. Provision calls it, so a bad value fails there.
func (a *App) throttleConfig(m *throttle.Metrics) (*throttle.Config, error) {
	tc := a.Throttle
	if tc == nil {
		tc = &ThrottleConfig{}
	}
	if tc.Disabled {
		return nil, nil
	}
	for name, v := range map[string]int{"account_failures": tc.AccountFailures,
		"client_failures": tc.ClientFailures, "address_failures": tc.AddressFailures} {
		if v < -1 {
			return nil, fmt.Errorf("throttle: %s %d: want a positive count, or -1 (off)", name, v)
		}
	}
	cfg := &throttle.Config{
		AccountFailures: tc.AccountFailures,
		ClientFailures:  tc.ClientFailures,
		AddressFailures: tc.AddressFailures,
		LockMin:         time.Duration(tc.Lock),
		LockMax:         time.Duration(tc.LockMax),
		Forget:          time.Duration(tc.Forget),
		Metrics:         m,
	}
	if tc.Lock < 0 || tc.LockMax < 0 || tc.Forget < 0 {
		return nil, fmt.Errorf("throttle: durations must be positive")
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// clientIP is Caddy's notion of the client's address (the forwarded one
// when the connection comes from a trusted proxy), handed to authserver,
// which imports nothing of Caddy.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// parseThrottle reads the throttle option of the oauthgate block:
//
//	throttle off
//	throttle {
//		accounts  <failures>|off
//		clients   <failures>|off
//		addresses <failures>|off
//		lock      <first> [<longest>]
//		forget    <duration>
//	}
func parseThrottle(d *caddyfile.Dispenser) (*ThrottleConfig, error) {
	tc := new(ThrottleConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Err("throttle: want `throttle off` or a block")
		}
		tc.Disabled = true
		return tc, nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch opt {
		case "accounts", "clients", "addresses":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			n := -1
			if args[0] != "off" {
				var err error
				if n, err = strconv.Atoi(args[0]); err != nil {
					return nil, d.Errf("throttle %s %q: want a number of failures or off", opt, args[0])
				}
			}
			switch opt {
			case "accounts":
				tc.AccountFailures = n
			case "clients":
				tc.ClientFailures = n
			default:
				tc.AddressFailures = n
			}
		case "lock", "forget":
			if len(args) < 1 || len(args) > 2 || (opt == "forget" && len(args) != 1) {
				return nil, d.ArgErr()
			}
			var durs []caddy.Duration
			for _, a := range args {
				v, err := caddy.ParseDuration(a)
				if err != nil {
					return nil, d.Errf("throttle %s: %v", opt, err)
				}
				durs = append(durs, caddy.Duration(v))
			}
			if opt == "forget" {
				tc.Forget = durs[0]
			} else {
				tc.Lock = durs[0]
				if len(durs) == 2 {
					tc.LockMax = durs[1]
				}
			}
		default:
			return nil, d.Errf("unrecognized throttle option %q", opt)
		}
	}
	return tc, nil
}
