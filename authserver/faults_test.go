package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
	"github.com/oauthgate/oauthgate/tokenstore/storetest"
)

// faultStore is a store whose calls of the methods the token endpoint uses
// can be made to fail: armed with a method and n, the n-th call of that
// method from then on fails as an unreachable database does, without
// reaching the database. It also records the order of those calls.
type faultStore struct {
	tokenstore.Store

	mu     sync.Mutex
	method string
	n      int
	calls  []string
	record bool
}

// arm makes the n-th call (1-based) of method from now on fail.
func (f *faultStore) arm(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method, f.n = method, n
}

// recordCalls starts recording the faultable calls made, forgetting earlier ones.
func (f *faultStore) recordCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.record = nil, true
}

// recorded stops recording and returns the calls made since recordCalls.
func (f *faultStore) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record = false
	return f.calls
}

// fault counts a call and reports the injected failure, if this is it.
func (f *faultStore) fault(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.record {
		f.calls = append(f.calls, method)
	}
	if f.method != method {
		return nil
	}
	if f.n--; f.n > 0 {
		return nil
	}
	f.method = ""
	return fmt.Errorf("injected fault in %s: %w", method, tokenstore.ErrUnavailable)
}

func (f *faultStore) GetClient(ctx context.Context, id string) (*tokenstore.Client, error) {
	if err := f.fault("GetClient"); err != nil {
		return nil, err
	}
	return f.Store.GetClient(ctx, id)
}

func (f *faultStore) GetCode(ctx context.Context, hash []byte) (*tokenstore.AuthCode, error) {
	if err := f.fault("GetCode"); err != nil {
		return nil, err
	}
	return f.Store.GetCode(ctx, hash)
}

func (f *faultStore) ConsumeCode(ctx context.Context, hash []byte) (*tokenstore.AuthCode, error) {
	if err := f.fault("ConsumeCode"); err != nil {
		return nil, err
	}
	return f.Store.ConsumeCode(ctx, hash)
}

func (f *faultStore) RedeemCode(ctx context.Context, hash []byte, g *tokenstore.Grant, rt *tokenstore.RefreshToken) (*tokenstore.AuthCode, error) {
	if err := f.fault("RedeemCode"); err != nil {
		return nil, err
	}
	return f.Store.RedeemCode(ctx, hash, g, rt)
}

func (f *faultStore) CreateGrant(ctx context.Context, g *tokenstore.Grant, rt *tokenstore.RefreshToken) error {
	if err := f.fault("CreateGrant"); err != nil {
		return err
	}
	return f.Store.CreateGrant(ctx, g, rt)
}

func (f *faultStore) GetGrant(ctx context.Context, id string) (*tokenstore.Grant, error) {
	if err := f.fault("GetGrant"); err != nil {
		return nil, err
	}
	return f.Store.GetGrant(ctx, id)
}

func (f *faultStore) GetRefreshToken(ctx context.Context, hash []byte) (*tokenstore.RefreshToken, error) {
	if err := f.fault("GetRefreshToken"); err != nil {
		return nil, err
	}
	return f.Store.GetRefreshToken(ctx, hash)
}

func (f *faultStore) RotateRefreshToken(ctx context.Context, oldHash []byte, next *tokenstore.RefreshToken) (*tokenstore.RefreshToken, error) {
	if err := f.fault("RotateRefreshToken"); err != nil {
		return nil, err
	}
	return f.Store.RotateRefreshToken(ctx, oldHash, next)
}

func (f *faultStore) RevokeGrant(ctx context.Context, id string, until time.Time) error {
	if err := f.fault("RevokeGrant"); err != nil {
		return err
	}
	return f.Store.RevokeGrant(ctx, id, until)
}

func (f *faultStore) GetUser(ctx context.Context, id string) (*tokenstore.User, error) {
	if err := f.fault("GetUser"); err != nil {
		return nil, err
	}
	return f.Store.GetUser(ctx, id)
}

func (f *faultStore) Memberships(ctx context.Context, userID string) ([]*tokenstore.Business, error) {
	if err := f.fault("Memberships"); err != nil {
		return nil, err
	}
	return f.Store.Memberships(ctx, userID)
}

// faultEngines runs fn on a fault-injecting SQLite store and PostgreSQL one.
func faultEngines(t *testing.T, fn func(t *testing.T, open func() tokenstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func() tokenstore.Store {
			st, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "og.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, func() tokenstore.Store {
			st, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "postgres", DSN: storetest.PostgresDSN(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

// faultRig is a Server on a faultStore with a stored confidential client
// allowed openid (so the id_token loads the user) and one user.
type faultRig struct {
	t     *testing.T
	s     *Server
	fs    *faultStore
	user  string
	codes int
}

func newFaultRig(t *testing.T, st tokenstore.Store) *faultRig {
	ctx := t.Context()
	fs := &faultStore{Store: st}
	ts, err := tokens.New(ctx, fs, tokens.Config{Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	s, err := New(Config{Issuer: testIssuer}, fs, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, &tokenstore.Client{ID: "app", SecretHash: tokens.HashSecret("app-secret"), Name: "App",
		GrantTypes:   []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:       []string{"openid", "read:invoices"},
		RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureUser(ctx, UserSpec{Email: "u@example.com", Password: "long-password",
		Businesses: []BusinessSpec{{ID: "b1", Name: "B One"}}}); err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return &faultRig{t: t, s: s, fs: fs, user: u.ID}
}

// newCode stores a fresh code for the user, straight into the store.
func (r *faultRig) newCode() (raw, grantID string) {
	r.codes++
	raw = fmt.Sprintf("code-%d-%d", r.codes, time.Now().UnixNano())
	grantID = fmt.Sprintf("gr_fault_%d_%d", r.codes, time.Now().UnixNano())
	if err := r.fs.Store.CreateCode(r.t.Context(), &tokenstore.AuthCode{Hash: tokens.HashSecret(raw), GrantID: grantID,
		ClientID: "app", RedirectURI: "https://app.example/cb", UserID: r.user, BusinessID: "b1",
		Scopes: []string{"openid", "read:invoices"}, Nonce: "n1", AuthTime: time.Now(),
		ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		r.t.Fatal(err)
	}
	return raw, grantID
}

// post sends a token-endpoint request as the client.
func (r *faultRig) post(path string, form url.Values) (int, map[string]any) {
	form.Set("client_id", "app")
	form.Set("client_secret", "app-secret")
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	r.s.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m
}

func (r *faultRig) exchange(code string) (int, map[string]any) {
	return r.post("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}})
}

func (r *faultRig) refresh(rt string) (int, map[string]any) {
	return r.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// works checks that the answer's tokens are good: the access token
// introspects active and the refresh token refreshes.
func (r *faultRig) works(what string, m map[string]any) {
	r.t.Helper()
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if at == "" || rt == "" || m["id_token"] == nil {
		r.t.Fatalf("%s: answer lacks tokens: %v", what, m)
	}
	if st, got := r.post("/oauth/introspect", url.Values{"token": {at}}); st != 200 || got["active"] != true {
		r.t.Fatalf("%s: access token introspects %d %v, want active", what, st, got)
	}
	if st, got := r.post("/oauth/introspect", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); st != 200 || got["active"] != true {
		r.t.Fatalf("%s: refresh token introspects %d %v, want active", what, st, got)
	}
}

// notRevoked fails if the grant was revoked.
func (r *faultRig) notRevoked(what, grantID string) {
	r.t.Helper()
	g, err := r.fs.Store.GetGrant(r.t.Context(), grantID)
	if err != nil {
		r.t.Fatalf("%s: grant: %v", what, err)
	}
	if !g.RevokedAt.IsZero() {
		r.t.Fatalf("%s: the grant was revoked", what)
	}
}

// steps are the faultable calls a request makes, numbered per method:
// {"GetCode", 1}, {"Memberships", 1}, {"Memberships", 2} …
type step struct {
	method string
	n      int
}

func stepsOf(calls []string) []step {
	seen := map[string]int{}
	var out []step
	for _, c := range calls {
		seen[c]++
		out = append(out, step{c, seen[c]})
	}
	return out
}

// TestCodeExchangeFaults: whichever store call of a code exchange fails,
// the answer is a 5xx that spent nothing: the same request retried
// succeeds, exactly once, with working tokens, and the grant lives. A
// third try is a replay and revokes the grant.
func TestCodeExchangeFaults(t *testing.T) {
	faultEngines(t, func(t *testing.T, open func() tokenstore.Store) {
		r := newFaultRig(t, open())
		// A first exchange, recorded, names the steps (the client cache is
		// cold, so client authentication reads the store too).
		code, gid := r.newCode()
		r.fs.recordCalls()
		st, m := r.exchange(code)
		steps := stepsOf(r.fs.recorded())
		if st != 200 {
			t.Fatalf("exchange without faults: %d %v", st, m)
		}
		r.works("exchange without faults", m)
		r.notRevoked("exchange without faults", gid)
		r.s.tokens.ForgetClient("app")
		t.Logf("steps of an exchange: %v", steps)
		if len(steps) < 4 {
			t.Fatalf("an exchange made only %v", steps)
		}
		for _, sp := range steps {
			code, gid := r.newCode()
			r.fs.arm(sp.method, sp.n)
			st, m := r.exchange(code)
			if st < 500 {
				t.Fatalf("fault at %s #%d: %d %v, want a 5xx", sp.method, sp.n, st, m)
			}
			st, m = r.exchange(code)
			if st != 200 {
				t.Fatalf("fault at %s #%d, then retry: %d %v, want 200", sp.method, sp.n, st, m)
			}
			r.works(fmt.Sprintf("retry after a fault at %s #%d", sp.method, sp.n), m)
			r.notRevoked(fmt.Sprintf("retry after a fault at %s #%d", sp.method, sp.n), gid)
			// Once is all: the code is spent.
			if st, m := r.exchange(code); st != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("fault at %s #%d, third try: %d %v, want invalid_grant", sp.method, sp.n, st, m)
			}
			if sp == steps[len(steps)-1] {
				// Later, it is a replay and revokes the grant.
				time.Sleep(codeRaceLeeway)
				if st, m := r.exchange(code); st != 400 || m["error"] != "invalid_grant" {
					t.Fatalf("replay: %d %v, want invalid_grant", st, m)
				}
				if g, err := r.fs.Store.GetGrant(t.Context(), gid); err != nil || g.RevokedAt.IsZero() {
					t.Fatalf("a replay after success left the grant alive (%v)", err)
				}
			}
			r.s.tokens.ForgetClient("app")
		}
	})
}

// TestRefreshFaults: whichever store call of a refresh fails, the answer is
// a 5xx that spent nothing: the same refresh token retried succeeds once,
// the grant lives, and the old token then counts as reused.
func TestRefreshFaults(t *testing.T) {
	faultEngines(t, func(t *testing.T, open func() tokenstore.Store) {
		r := newFaultRig(t, open())
		code, gid := r.newCode()
		st, m := r.exchange(code)
		if st != 200 {
			t.Fatalf("exchange: %d %v", st, m)
		}
		rt := m["refresh_token"].(string)
		r.s.tokens.ForgetClient("app")
		r.fs.recordCalls()
		st, m = r.refresh(rt)
		steps := stepsOf(r.fs.recorded())
		if st != 200 {
			t.Fatalf("refresh without faults: %d %v", st, m)
		}
		r.works("refresh without faults", m)
		rt = m["refresh_token"].(string)
		r.s.tokens.ForgetClient("app")
		t.Logf("steps of a refresh: %v", steps)
		if len(steps) < 5 {
			t.Fatalf("a refresh made only %v", steps)
		}
		for _, sp := range steps {
			r.fs.arm(sp.method, sp.n)
			st, m := r.refresh(rt)
			if st < 500 {
				t.Fatalf("fault at %s #%d: %d %v, want a 5xx", sp.method, sp.n, st, m)
			}
			st, m = r.refresh(rt)
			if st != 200 {
				t.Fatalf("fault at %s #%d, then retry: %d %v, want 200", sp.method, sp.n, st, m)
			}
			what := fmt.Sprintf("retry after a fault at %s #%d", sp.method, sp.n)
			r.works(what, m)
			r.notRevoked(what, gid)
			old := rt
			rt = m["refresh_token"].(string)
			// The spent token is spent: presenting it again is reuse.
			// (Checked on the last step only: reuse revokes the grant.)
			if sp == steps[len(steps)-1] {
				if st, m := r.refresh(old); st != 400 || m["error"] != "invalid_grant" {
					t.Fatalf("reuse of the spent token: %d %v, want invalid_grant", st, m)
				}
				if g, err := r.fs.Store.GetGrant(t.Context(), gid); err != nil || g.RevokedAt.IsZero() {
					t.Fatalf("reuse of the spent token left the grant alive (%v)", err)
				}
			}
			r.s.tokens.ForgetClient("app")
		}
	})
}

// TestCodeReplayRevokes: a spent code presented again revokes its grant at
// once when anything differs from the exchange that spent it (another
// client, another verifier), and an exact duplicate does once it comes
// later than a race would.
func TestCodeReplayRevokes(t *testing.T) {
	faultEngines(t, func(t *testing.T, open func() tokenstore.Store) {
		st := open()
		r := newFaultRig(t, st)
		if err := st.CreateClient(t.Context(), &tokenstore.Client{ID: "other", SecretHash: tokens.HashSecret("other-secret"),
			Name: "Other", GrantTypes: []string{"authorization_code"}, Scopes: []string{"read:invoices"},
			RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
			t.Fatal(err)
		}
		code, gid := r.newCode()
		if st, m := r.exchange(code); st != 200 {
			t.Fatalf("exchange: %d %v", st, m)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
			"client_id": {"other"}, "client_secret": {"other-secret"}}
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		r.s.ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Fatalf("another client's replay: %d %s", rec.Code, rec.Body)
		}
		if g, err := st.GetGrant(t.Context(), gid); err != nil || g.RevokedAt.IsZero() {
			t.Fatalf("another client's immediate replay left the grant alive (%v)", err)
		}
	})
}

// TestDeleteUserLeavesNothing: deleting a user through the admin API kills
// the user's grants and tokens, and a code minted for the user before the
// deletion cannot be exchanged after it (even without openid, which would
// load the user).
func TestDeleteUserLeavesNothing(t *testing.T) {
	faultEngines(t, func(t *testing.T, open func() tokenstore.Store) {
		st := open()
		r := newFaultRig(t, st)
		code, _ := r.newCode()
		status, m := r.exchange(code)
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m)
		}
		// A second code, without openid, waits in the store.
		pending := "pending-" + code
		if err := st.CreateCode(t.Context(), &tokenstore.AuthCode{Hash: tokens.HashSecret(pending), GrantID: "gr_pending",
			ClientID: "app", RedirectURI: "https://app.example/cb", UserID: r.user, BusinessID: "b1",
			Scopes: []string{"read:invoices"}, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		r.s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("DELETE", "/oauthgate/users/"+r.user, nil))
		if rec.Code != 204 {
			t.Fatalf("deleting the user: %d %s", rec.Code, rec.Body)
		}
		if st, got := r.post("/oauth/introspect", url.Values{"token": {m["access_token"].(string)}}); st != 200 || got["active"] != false {
			t.Errorf("the deleted user's access token introspects %d %v", st, got)
		}
		if st, got := r.refresh(m["refresh_token"].(string)); st != 400 || got["error"] != "invalid_grant" {
			t.Errorf("the deleted user's refresh token: %d %v", st, got)
		}
		if st, got := r.exchange(pending); st != 400 || got["error"] != "invalid_grant" {
			t.Errorf("a code of the deleted user: %d %v, want invalid_grant", st, got)
		}
	})
}
