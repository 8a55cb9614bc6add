package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/oauthgate/oauthgate/authserver"
)

// IdentityConfig selects who signs users in for the authorization-code
// flow.
type IdentityConfig struct {
	// Source is "builtin" (default): users of oauthgate's own directory
	// sign in on its sign-in page; or "delegated": the platform's session
	// endpoint says who is signed in, and its sign-in page signs users in.
	Source string `json:"source,omitempty"`
	// SessionURL is the platform's session endpoint (delegated). oauthgate
	// GETs it with the browser's cookies and expects 200 with
	// {"id", "email", "name", "businesses": [{"id", "name"}],
	// "current_business", "auth_time"}, or 401 when nobody is signed in.
	SessionURL string `json:"session_url,omitempty"`
	// SignInURL is the platform's sign-in page (delegated). The full OAuth
	// URL is appended as the ReturnParam query parameter.
	SignInURL string `json:"sign_in_url,omitempty"`
	// ReturnParam names that parameter. Default "return_to".
	ReturnParam string `json:"return_param,omitempty"`
	// Timeout bounds each call to SessionURL and BusinessesURL. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// BusinessesURL is asked at every refresh which businesses the user
	// still administers (delegated): GET <url>?user_id=<id>, answered
	// with {"businesses": [{"id", "name"}]} or 404. When it fails, the
	// refresh is refused with 503 temporarily_unavailable. Placeholders
	// such as {env.PLATFORM_BUSINESSES_URL} are replaced. Default: none
	// (the businesses seen at the user's last visit to /authorize hold).
	BusinessesURL string `json:"businesses_url,omitempty"`
	// BusinessesCache is how long an answer of BusinessesURL is reused
	// per user. Default 30s; negative: not reused.
	BusinessesCache caddy.Duration `json:"businesses_cache,omitempty"`
}

// StaticUser is a user of the built-in directory declared in the
// configuration. It is created, or brought up to date, when the
// configuration loads.
type StaticUser struct {
	// Email is the sign-in name, unique.
	Email string `json:"email"`
	// ID is the user id (the sub claim). Default: derived from Email.
	ID string `json:"id,omitempty"`
	// Name is shown on the consent screen and in id_tokens. Default: the
	// part of Email before the @.
	Name string `json:"name,omitempty"`
	// Password in clear text, hashed with bcrypt when the configuration
	// loads and never logged. Use a placeholder such as
	// {env.DEMO_PASSWORD} to keep it out of the file.
	Password string `json:"password,omitempty"`
	// PasswordHash is a bcrypt hash instead (e.g. from `caddy
	// hash-password --algorithm bcrypt`).
	PasswordHash string `json:"password_hash,omitempty"`
	// Businesses the user administers; at least one.
	Businesses []BusinessConfig `json:"businesses,omitempty"`
	// CurrentBusiness is preselected on the consent screen and is the
	// tenancy of first-party clients. Default: the first business.
	CurrentBusiness string `json:"current_business,omitempty"`
}

// BusinessConfig names a business.
type BusinessConfig struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// delegatedIdentity resolves the identity settings for the authorization
// server: nil means the built-in directory.
func (a *App) delegatedIdentity(repl *caddy.Replacer) (*authserver.DelegatedIdentity, error) {
	ic := a.Identity
	if ic == nil {
		return nil, nil
	}
	switch ic.Source {
	case "", "builtin":
		return nil, nil
	case "delegated":
	default:
		return nil, fmt.Errorf("identity: unknown source %q (want builtin or delegated)", ic.Source)
	}
	d := &authserver.DelegatedIdentity{
		SessionURL:  repl.ReplaceKnown(ic.SessionURL, ""),
		SignInURL:   repl.ReplaceKnown(ic.SignInURL, ""),
		ReturnParam: ic.ReturnParam,
		Timeout:     time.Duration(ic.Timeout),

		BusinessesURL:   repl.ReplaceKnown(ic.BusinessesURL, ""),
		BusinessesCache: time.Duration(ic.BusinessesCache),
	}
	if d.SessionURL == "" || d.SignInURL == "" {
		return nil, errors.New("identity delegated: session_url and sign_in_url are required")
	}
	return d, nil
}

// userSpecs resolves the declared users and checks each as the directory
// will when Start brings it up to date (which hashes the passwords).
func (a *App) userSpecs(repl *caddy.Replacer) ([]authserver.UserSpec, error) {
	specs := make([]authserver.UserSpec, 0, len(a.Users))
	for i, su := range a.Users {
		spec := authserver.UserSpec{
			ID:              su.ID,
			Email:           repl.ReplaceKnown(su.Email, ""),
			Name:            su.Name,
			Password:        repl.ReplaceKnown(su.Password, ""),
			PasswordHash:    repl.ReplaceKnown(su.PasswordHash, ""),
			CurrentBusiness: su.CurrentBusiness,
		}
		for _, b := range su.Businesses {
			spec.Businesses = append(spec.Businesses, authserver.BusinessSpec{ID: b.ID, Name: b.Name})
		}
		if err := authserver.CheckUser(spec); err != nil {
			// The error names the user by e-mail, never the password.
			return nil, fmt.Errorf("users[%d] %s: %w", i, spec.Email, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// syncUsers puts the declared users into the directory.
func syncUsers(ctx context.Context, srv *authserver.Server, specs []authserver.UserSpec) error {
	for i, spec := range specs {
		if err := srv.EnsureUser(ctx, spec); err != nil {
			// The error names the user by e-mail, never the password.
			return fmt.Errorf("users[%d] %s: %w", i, spec.Email, err)
		}
	}
	return nil
}

// parseIdentity reads
//
//	identity builtin
//	identity delegated {
//		session_url <url>
//		sign_in_url <url>
//		return_param <name>
//		timeout <duration>
//		businesses_url <url>
//		businesses_cache <duration>
//	}
func parseIdentity(d *caddyfile.Dispenser) (*IdentityConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	ic := &IdentityConfig{Source: d.Val()}
	if ic.Source != "builtin" && ic.Source != "delegated" {
		return nil, d.Errf("identity %q: want builtin or delegated", ic.Source)
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		if ic.Source != "delegated" {
			return nil, d.Errf("identity builtin takes no options (%s)", opt)
		}
		switch opt {
		case "session_url":
			ic.SessionURL = v
		case "sign_in_url":
			ic.SignInURL = v
		case "return_param":
			ic.ReturnParam = v
		case "timeout":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("timeout %q: want a positive duration", v)
			}
			ic.Timeout = caddy.Duration(dur)
		case "businesses_url":
			ic.BusinessesURL = v
		case "businesses_cache":
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("businesses_cache %q: want a duration", v)
			}
			ic.BusinessesCache = caddy.Duration(dur)
		default:
			return nil, d.Errf("unrecognized identity option %q", opt)
		}
	}
	if ic.Source == "delegated" && (ic.SessionURL == "" || ic.SignInURL == "") {
		return nil, d.Err("identity delegated: session_url and sign_in_url are required")
	}
	return ic, nil
}

// parseStaticUser reads
//
//	user <email> {
//		id <id>
//		name <name>
//		password <password>
//		password_hash <bcrypt hash>
//		business <id> [<name>]
//		current_business <id>
//	}
func parseStaticUser(d *caddyfile.Dispenser) (StaticUser, error) {
	var u StaticUser
	if !d.NextArg() {
		return u, d.ArgErr()
	}
	u.Email = d.Val()
	if d.NextArg() {
		return u, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "business":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return u, d.Errf("business: want `business <id> [<name>]`; quote a name with spaces")
			}
			b := BusinessConfig{ID: args[0]}
			if len(args) == 2 {
				b.Name = args[1]
			}
			u.Businesses = append(u.Businesses, b)
		case "id", "name", "password", "password_hash", "current_business":
			v, err := oneArg(d)
			if err != nil {
				return u, err
			}
			switch opt {
			case "id":
				u.ID = v
			case "name":
				u.Name = v
			case "password":
				u.Password = v
			case "password_hash":
				u.PasswordHash = v
			case "current_business":
				u.CurrentBusiness = v
			}
		default:
			return u, d.Errf("unrecognized user option %q", opt)
		}
	}
	if (u.Password == "") == (u.PasswordHash == "") {
		return u, d.Errf("user %s: give exactly one of password, password_hash", u.Email)
	}
	if len(u.Businesses) == 0 {
		return u, d.Errf("user %s: at least one `business <id> [<name>]` is required", u.Email)
	}
	return u, nil
}
