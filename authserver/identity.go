package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// account is the user signed in on a browser, as the consent screen and
// the authorization code need it.
type account struct {
	ID, Name, Email string
	// Businesses the user administers, sorted by id.
	Businesses      []*tokenstore.Business
	CurrentBusiness string
	// AuthTime is when the user last authenticated; zero when unknown.
	AuthTime time.Time
	// binding ties the consent form's CSRF token to this sign-in.
	binding string
}

func (a *account) administers(id string) bool {
	return slices.ContainsFunc(a.Businesses, func(b *tokenstore.Business) bool { return b.ID == id })
}

// defaultBusiness is the current business, or the first one the user
// administers when the current one is unset or no longer theirs.
func (a *account) defaultBusiness() string {
	if a.administers(a.CurrentBusiness) {
		return a.CurrentBusiness
	}
	if len(a.Businesses) > 0 {
		return a.Businesses[0].ID
	}
	return ""
}

// identitySource says who is signed in on a browser and where a signed-out
// browser goes to sign in.
type identitySource interface {
	// signedIn returns the signed-in account, or nil when there is none.
	signedIn(r *http.Request) (*account, error)
	// signInURL is where to send the browser; returnTo is the authorize
	// URL (path and query) to come back to. force asks for a fresh
	// authentication (prompt=login).
	signInURL(returnTo string, force bool) string
}

// errIdentityUnavailable: the identity source could not answer.
var errIdentityUnavailable = errors.New("identity source unavailable")

// builtinIdentity signs users in against the store's directory, with the
// session cookie oauthgate sets.
type builtinIdentity struct{ s *Server }

func (b builtinIdentity) signedIn(r *http.Request) (*account, error) {
	sess := b.s.session(r)
	if sess == nil {
		return nil, nil
	}
	ctx := r.Context()
	u, err := b.s.store.GetUser(ctx, sess.Subject)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, nil // deleted since: the session ends with the account
	case err != nil:
		return nil, err
	}
	bs, err := b.s.store.Memberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &account{
		ID: u.ID, Name: u.Name, Email: u.Email, Businesses: bs, CurrentBusiness: u.CurrentBusiness,
		AuthTime: time.Unix(sess.AuthTime, 0), binding: sess.SID,
	}, nil
}

func (b builtinIdentity) signInURL(returnTo string, _ bool) string {
	return b.s.paths.signIn + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

// DelegatedIdentity lets a platform that already has accounts sign its
// users in: oauthgate asks the platform's session endpoint who is signed in,
// forwarding the browser's cookies, and sends a signed-out browser to the
// platform's sign-in page with the full OAuth URL as the return address.
//
// The session endpoint answers GET with 200 and
//
//	{"id": "usr_1", "email": "ada@example.com", "name": "Ada Lovelace",
//	 "businesses": [{"id": "biz_1", "name": "Analytical Engines"}],
//	 "current_business": "biz_1", "auth_time": 1767225600, "sid": "…"}
//
// (auth_time, unix seconds, and sid, an identifier of this sign-in, are
// optional), or with 401, 403 or a redirect when nobody is signed in. The
// consent form is bound to the sign-in it was shown to:
// to the sid when the platform gives one, otherwise to the platform's
// cookies, so a form loaded before a sign-out and a new sign-in is refused
// after them. The browser sends the platform's cookies to
// oauthgate only when they are scoped to oauthgate's host too (same host,
// or a parent domain).
type DelegatedIdentity struct {
	// SessionURL is the platform's session endpoint.
	SessionURL string
	// SignInURL is the platform's sign-in page.
	SignInURL string
	// ReturnParam names the query parameter of SignInURL that carries the
	// return address. Default "return_to".
	ReturnParam string
	// Timeout bounds each call to SessionURL and BusinessesURL. Default 5
	// seconds.
	Timeout time.Duration
	// BusinessesURL, when set, is asked at every refresh whether the user
	// still administers the grant's business, since a refresh carries no
	// browser cookies for SessionURL: GET BusinessesURL?user_id=<id>,
	// answered with 200 and {"businesses": [{"id": "biz_1", ...}]}, or 404
	// when the platform has no such user (no businesses). Any other answer,
	// or none within Timeout, refuses the refresh with 503
	// temporarily_unavailable (nothing is spent; the client retries):
	// granting while the platform cannot say would let a withdrawn
	// business go on being used. Empty: the businesses mirrored at the
	// user's last visit to /authorize are trusted.
	BusinessesURL string
	// BusinessesCache is how long an answer of BusinessesURL is reused
	// for a user. Default 30 seconds; negative: never reused.
	BusinessesCache time.Duration
}

// businessesCacheMax bounds the users whose businesses are cached.
const businessesCacheMax = 10000

type delegatedIdentity struct {
	s      *Server
	cfg    DelegatedIdentity
	client *http.Client

	mu    sync.Mutex
	cache map[string]platformBusinesses // by user id
}

// platformBusinesses is an answer of BusinessesURL.
type platformBusinesses struct {
	ids   []string
	until time.Time
}

func newDelegatedIdentity(s *Server, cfg DelegatedIdentity) (*delegatedIdentity, error) {
	urls := map[string]string{"session_url": cfg.SessionURL, "sign_in_url": cfg.SignInURL}
	if cfg.BusinessesURL != "" {
		urls["businesses_url"] = cfg.BusinessesURL
	}
	for name, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("delegated identity: %s %q must be an absolute http(s) URL", name, raw)
		}
	}
	if cfg.ReturnParam == "" {
		cfg.ReturnParam = "return_to"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.BusinessesCache == 0 {
		cfg.BusinessesCache = 30 * time.Second
	}
	return &delegatedIdentity{s: s, cfg: cfg, client: &http.Client{
		Timeout: cfg.Timeout,
		// A redirect means "go and sign in": it is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// platformSession is the session endpoint's answer.
type platformSession struct {
	ID              string         `json:"id"`
	Email           string         `json:"email"`
	Name            string         `json:"name"`
	Businesses      []BusinessSpec `json:"businesses"`
	CurrentBusiness string         `json:"current_business"`
	AuthTime        int64          `json:"auth_time"`
	// SID identifies the sign-in, as OpenID Connect's sid does.
	SID string `json:"sid"`
}

func (d *delegatedIdentity) signedIn(r *http.Request) (*account, error) {
	ctx := r.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cfg.SessionURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	cookies := platformCookies(r)
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errIdentityUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		(resp.StatusCode >= 300 && resp.StatusCode < 400):
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: session endpoint answered %d", errIdentityUnavailable, resp.StatusCode)
	}
	var ps platformSession
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ps); err != nil {
		return nil, fmt.Errorf("%w: decoding session: %v", errIdentityUnavailable, err)
	}
	if err := ps.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errIdentityUnavailable, err)
	}
	if err := d.mirror(ctx, &ps); err != nil {
		return nil, err
	}
	a := &account{ID: ps.ID, Name: ps.Name, Email: strings.ToLower(ps.Email), CurrentBusiness: ps.CurrentBusiness,
		binding: platformBinding(&ps, cookies)}
	for _, b := range ps.Businesses {
		a.Businesses = append(a.Businesses, &tokenstore.Business{ID: b.ID, Name: b.Name})
	}
	slices.SortFunc(a.Businesses, func(x, y *tokenstore.Business) int { return strings.Compare(x.ID, y.ID) })
	if ps.AuthTime > 0 {
		a.AuthTime = time.Unix(ps.AuthTime, 0)
	}
	return a, nil
}

// platformBinding identifies the platform sign-in a form is shown to, as
// the session id does for the built-in directory: the platform's sid when
// it gives one, else the platform cookies that make the session (a new
// sign-in sets new ones), with the user and auth_time. It only feeds the
// form token's HMAC, so the cookies are hashed, never kept.
func platformBinding(ps *platformSession, cookies string) string {
	sign := "cookies:" + base64.RawURLEncoding.EncodeToString(sha256Sum(cookies))
	if ps.SID != "" {
		sign = "sid:" + ps.SID
	}
	return "platform\x00" + ps.ID + "\x00" + strconv.FormatInt(ps.AuthTime, 10) + "\x00" + sign
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (ps *platformSession) validate() error {
	if !policies.ValidBusinessID(ps.ID) {
		return fmt.Errorf("session: id %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : -", ps.ID)
	}
	if !validEmail(ps.Email) {
		return errors.New("session: a valid email is required")
	}
	seen := map[string]bool{}
	out := ps.Businesses[:0]
	for _, b := range ps.Businesses {
		if !policies.ValidBusinessID(b.ID) {
			return fmt.Errorf("session: business id %q is not valid", b.ID)
		}
		if !seen[b.ID] {
			seen[b.ID] = true
			if b.Name == "" {
				b.Name = b.ID
			}
			out = append(out, b)
		}
	}
	ps.Businesses = out
	if !seen[ps.CurrentBusiness] {
		ps.CurrentBusiness = ""
		if len(out) > 0 {
			ps.CurrentBusiness = out[0].ID
		}
	}
	if ps.Name == "" {
		ps.Name = ps.Email
	}
	return nil
}

// mirror copies the platform's user into the store's directory, so that
// id_tokens, userinfo and refreshes can describe the user later. It writes
// only what changed.
func (d *delegatedIdentity) mirror(ctx context.Context, ps *platformSession) error {
	st := d.s.store
	u, err := st.GetUser(ctx, ps.ID)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		u = &tokenstore.User{ID: ps.ID, Email: ps.Email, Name: ps.Name, CurrentBusiness: ps.CurrentBusiness}
		if err := st.CreateUser(ctx, u); err != nil && !errors.Is(err, tokenstore.ErrConflict) {
			return err
		} else if err != nil {
			return fmt.Errorf("mirroring platform user: e-mail %s belongs to another user: %w", ps.Email, err)
		}
	case err != nil:
		return err
	case u.Email != strings.ToLower(ps.Email) || u.Name != ps.Name || u.CurrentBusiness != ps.CurrentBusiness:
		u.Email, u.Name, u.CurrentBusiness = ps.Email, ps.Name, ps.CurrentBusiness
		if err := st.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	have, err := st.Memberships(ctx, ps.ID)
	if err != nil {
		return err
	}
	same := len(have) == len(ps.Businesses)
	names := make(map[string]string, len(have))
	for _, b := range have {
		names[b.ID] = b.Name
	}
	ids := make([]string, 0, len(ps.Businesses))
	for _, b := range ps.Businesses {
		ids = append(ids, b.ID)
		if n, ok := names[b.ID]; !ok || n != b.Name {
			same = false
		}
	}
	if same {
		return nil
	}
	for _, b := range ps.Businesses {
		if err := st.UpsertBusiness(ctx, &tokenstore.Business{ID: b.ID, Name: b.Name}); err != nil {
			return err
		}
	}
	return st.SetMemberships(ctx, ps.ID, ids)
}

// businessesOf asks BusinessesURL which businesses the user administers,
// or answers from the cache. An error matches errIdentityUnavailable and
// carries no URL (it may hold a credential).
func (d *delegatedIdentity) businessesOf(ctx context.Context, userID string) ([]string, error) {
	now := d.s.now()
	d.mu.Lock()
	e, ok := d.cache[userID]
	d.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.ids, nil
	}
	u, err := url.Parse(d.cfg.BusinessesURL)
	if err != nil {
		return nil, fmt.Errorf("%w: businesses_url does not parse", errIdentityUnavailable)
	}
	q := u.Query()
	q.Set("user_id", userID)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errIdentityUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: asking businesses_url: %v", errIdentityUnavailable, err)
	}
	defer resp.Body.Close()
	var ids []string
	switch resp.StatusCode {
	case http.StatusNotFound:
		// No such user at the platform: no businesses.
	case http.StatusOK:
		var body struct {
			Businesses []BusinessSpec `json:"businesses"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("%w: decoding businesses: %v", errIdentityUnavailable, err)
		}
		for _, b := range body.Businesses {
			if !policies.ValidBusinessID(b.ID) {
				return nil, fmt.Errorf("%w: businesses: business id %q is not valid", errIdentityUnavailable, b.ID)
			}
			ids = append(ids, b.ID)
		}
	default:
		return nil, fmt.Errorf("%w: businesses_url answered %d", errIdentityUnavailable, resp.StatusCode)
	}
	if d.cfg.BusinessesCache > 0 {
		d.mu.Lock()
		if d.cache == nil || len(d.cache) >= businessesCacheMax {
			d.cache = make(map[string]platformBusinesses)
		}
		d.cache[userID] = platformBusinesses{ids: ids, until: now.Add(d.cfg.BusinessesCache)}
		d.mu.Unlock()
	}
	return ids, nil
}

// signInURL appends the absolute OAuth URL to the platform's sign-in page,
// and prompt=login when a fresh authentication is required.
func (d *delegatedIdentity) signInURL(returnTo string, force bool) string {
	u, _ := url.Parse(d.cfg.SignInURL)
	q := u.Query()
	q.Set(d.cfg.ReturnParam, d.s.endpointURL(returnTo))
	if force {
		q.Set("prompt", "login")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// platformCookies is the browser's Cookie header without oauthgate's own
// cookies, which are no business of the platform.
func platformCookies(r *http.Request) string {
	var b strings.Builder
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, "oauthgate_") || strings.HasPrefix(c.Name, "__Secure-oauthgate_") {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name + "=" + c.Value)
	}
	return b.String()
}

// validEmail is a sanity check, not RFC 5322: something@something, no
// spaces or control characters, at most 254 bytes.
func validEmail(e string) bool {
	if len(e) < 3 || len(e) > 254 {
		return false
	}
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 {
		return false
	}
	for i := 0; i < len(e); i++ {
		if e[i] <= ' ' || e[i] == 0x7f {
			return false
		}
	}
	return true
}
