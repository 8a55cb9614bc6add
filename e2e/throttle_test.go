package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// throttleCaddyfile runs the demo user and app with 3s (first) to 6s locks
// and trusts the loopback proxy's X-Forwarded-For.
const throttleCaddyfile = "e2e/testdata/throttle.Caddyfile"

// attempt is what a throttled request's answer looks like, apart from
// what necessarily differs (the e-mail echoed in the form, the exact
// seconds left).
type attempt struct {
	Status     int
	RetryAfter bool
	Message    string
}

var alertRE = regexp.MustCompile(`role="alert">([^<]*)<`)

func signInAttempt(t *testing.T, p *page) attempt {
	t.Helper()
	a := attempt{Status: p.StatusCode, RetryAfter: p.Header.Get("Retry-After") != ""}
	if m := alertRE.FindStringSubmatch(p.Body); m != nil {
		a.Message = regexp.MustCompile(`\d+ seconds?`).ReplaceAllString(m[1], "N seconds")
	}
	if a.RetryAfter {
		s, err := strconv.Atoi(p.Header.Get("Retry-After"))
		if err != nil || s < 1 || s > 6 {
			t.Fatalf("Retry-After %q: want 1 to 6 seconds", p.Header.Get("Retry-After"))
		}
	}
	return a
}

// signInPage opens the sign-in page of an authorization request.
func signInPage(t *testing.T, n *node) (*userAgent, *page) {
	t.Helper()
	ua := newUserAgent(t)
	p := ua.get(ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "s"))
	if p.Location == nil || p.Location.Path != "/oauth/sign-in" {
		t.Fatalf("want the sign-in page, got %d %v", p.StatusCode, p.Location)
	}
	return ua, ua.get(p.Location.String())
}

// signInFrom posts the sign-in form as a browser at client address addr
// behind the trusted proxy.
func (ua *userAgent) signInFrom(sp *page, addr, email, password string) *page {
	ua.t.Helper()
	f := parseForm(ua.t, sp.Body)
	f.Fields.Set("email", email)
	f.Fields.Set("password", password)
	req, err := http.NewRequest(http.MethodPost, sp.Request.URL.ResolveReference(&url.URL{Path: f.Action}).String(),
		strings.NewReader(f.Fields.Encode()))
	if err != nil {
		ua.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	return ua.do(req)
}

// waitRetryAfter sleeps for as long as p's Retry-After says, and a little.
func waitRetryAfter(t *testing.T, p *page) {
	t.Helper()
	s, err := strconv.Atoi(p.Header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q", p.Header.Get("Retry-After"))
	}
	time.Sleep(time.Duration(s)*time.Second + 200*time.Millisecond)
}

// wrongThenRight signs in with 30 wrong passwords, then the right one, and
// returns every answer. It logs how long the counted failures (the first
// five) and the refusals took.
func wrongThenRight(t *testing.T, ua *userAgent, sp *page, addr, email, right string) ([]attempt, *page) {
	var got []attempt
	var last *page
	var counted, refused time.Duration
	for i := range 30 {
		start := time.Now()
		last = ua.signInFrom(sp, addr, email, "wrong-password")
		if i < 5 {
			counted += time.Since(start)
		} else {
			refused += time.Since(start)
		}
		got = append(got, signInAttempt(t, last))
	}
	t.Logf("%s: a counted failure took %v on average, a refusal %v", email, counted/5, refused/25)
	last = ua.signInFrom(sp, addr, email, right)
	got = append(got, signInAttempt(t, last))
	return got, last
}

// TestSignInThrottle is issue 9 item 5 on the sign-in page: 30 wrong
// passwords in a row for one account lock it (429 with Retry-After), the
// right password is then refused until the lock ends, and an unknown
// e-mail is answered exactly alike. A client address with too many
// failures is locked for every account; the address is Caddy's client IP.
func TestSignInThrottle(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: throttleCaddyfile})
	ua, sp := signInPage(t, n)

	const wrong = "The e-mail address or password is incorrect. Please try again."
	const locked = "Too many failed sign-ins. Please try again in N seconds."
	var want []attempt
	for i := range 31 {
		switch {
		case i < 4:
			want = append(want, attempt{401, false, wrong})
		default:
			want = append(want, attempt{429, true, locked})
		}
	}

	known, last := wrongThenRight(t, ua, sp, "192.0.2.1", demoEmail, demoPassword)
	unknown, lastUnknown := wrongThenRight(t, ua, sp, "192.0.2.2", "nobody@example.com", demoPassword)
	for i := range want {
		if known[i] != want[i] {
			t.Errorf("known account, attempt %d: %+v, want %+v", i+1, known[i], want[i])
		}
		if unknown[i] != known[i] {
			t.Errorf("attempt %d: unknown e-mail %+v, known account %+v", i+1, unknown[i], known[i])
		}
	}
	if strings.Contains(strings.Join(last.Header.Values("Set-Cookie"), ";"), "oauthgate_session") {
		t.Fatal("the right password during the lock got a session")
	}

	// Once the lock is over, the right password works; another wrong one
	// would have locked again, for twice as long.
	waitRetryAfter(t, last)
	if p := ua.signInFrom(sp, "192.0.2.1", demoEmail, demoPassword); p.StatusCode != http.StatusSeeOther {
		t.Errorf("right password after the lock: %d, want 303", p.StatusCode)
	}
	waitRetryAfter(t, lastUnknown)
	if p := ua.signInFrom(sp, "192.0.2.2", "nobody@example.com", "x"); p.StatusCode != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "6" {
		t.Errorf("a wrong password after the lock: %d, Retry-After %q; want 429 and the doubled lock, 6", p.StatusCode, p.Header.Get("Retry-After"))
	}

	// Twenty failures from one address, each for another e-mail, lock the
	// address for everyone; another address is not affected.
	for i := range 20 {
		a := signInAttempt(t, ua.signInFrom(sp, "198.51.100.7", fmt.Sprintf("guess%d@example.com", i), "x"))
		if wantStatus := map[bool]int{true: 429, false: 401}[i == 19]; a.Status != wantStatus {
			t.Fatalf("failure %d from one address: %d, want %d", i+1, a.Status, wantStatus)
		}
	}
	if p := ua.signInFrom(sp, "198.51.100.7", demoEmail, demoPassword); p.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password from the locked address: %d, want 429", p.StatusCode)
	}
	if p := newUA(t, n).signInFrom(sp, "198.51.100.8", demoEmail, demoPassword); p.StatusCode != http.StatusSeeOther {
		t.Errorf("right password from another address: %d, want 303", p.StatusCode)
	}

	m := scrapeMetrics(t, n)
	for _, want := range []string{
		`oauthgate_throttle_locks_total{endpoint="sign_in",subject="account"} 3`,
		`oauthgate_throttle_locks_total{endpoint="sign_in",subject="sign_in_address"} 1`,
		`oauthgate_throttle_refused_total{endpoint="sign_in"} 53`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, secret := range []string{"example.com", "192.0.2.", "198.51.100."} {
		if strings.Contains(m, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}

// newUA is a fresh browser whose posts reuse sp's form: the CSRF cookie is
// per browser, so it first loads the sign-in page itself.
func newUA(t *testing.T, n *node) *userAgentWithPage {
	ua, sp := signInPage(t, n)
	return &userAgentWithPage{ua, sp}
}

type userAgentWithPage struct {
	*userAgent
	sp *page
}

func (u *userAgentWithPage) signInFrom(_ *page, addr, email, password string) *page {
	return u.userAgent.signInFrom(u.sp, addr, email, password)
}

// clientCall is one authenticated call to a client-authenticating endpoint.
type clientCall struct {
	Status     int
	RetryAfter bool
	Error      string
}

// callAs authenticates as id/secret (HTTP Basic) at endpoint from addr.
func callAs(t *testing.T, n *node, endpoint, id, secret, addr string) (clientCall, *http.Response) {
	t.Helper()
	form := url.Values{"token": {"not-a-token"}}
	if endpoint == "token" {
		form = url.Values{"grant_type": {"client_credentials"}}
	}
	req, err := http.NewRequest(http.MethodPost, n.URL+"/oauth/"+endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := fast.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c := clientCall{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After") != ""}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %d with a body that is not JSON: %s", endpoint, resp.StatusCode, b)
		}
		c.Error = e.Error
	}
	return c, resp
}

// TestClientAuthThrottle is issue 9 item 5 at the token, revocation and
// introspection endpoints: 30 wrong secrets lock the client_id (429,
// invalid_client, Retry-After), the right secret is then refused until the
// lock ends, and an unknown client_id is answered exactly alike.
func TestClientAuthThrottle(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: throttleCaddyfile})
	var want []clientCall
	for i := range 31 {
		if i < 4 {
			want = append(want, clientCall{401, false, "invalid_client"})
		} else {
			want = append(want, clientCall{429, true, "invalid_client"})
		}
	}
	for i, endpoint := range []string{"token", "revoke", "introspect"} {
		t.Run(endpoint, func(t *testing.T) {
			c := n.registerClient(map[string]any{"name": endpoint, "scopes": []string{"read:invoices"}, "businesses": []string{"biz_acme"}})
			addr, otherAddr := fmt.Sprintf("192.0.2.%d", 10+i), fmt.Sprintf("192.0.2.%d", 20+i)
			var lastResp *http.Response
			run := func(id, addr, right string) []clientCall {
				var got []clientCall
				for range 30 {
					cc, _ := callAs(t, n, endpoint, id, "wrong-secret", addr)
					got = append(got, cc)
				}
				cc, resp := callAs(t, n, endpoint, id, right, addr)
				lastResp = resp
				return append(got, cc)
			}
			known := run(c.ClientID, addr, c.ClientSecret)
			knownResp := lastResp
			unknown := run("no-such-client-"+endpoint, otherAddr, c.ClientSecret)
			for i := range want {
				if known[i] != want[i] {
					t.Errorf("registered client, call %d: %+v, want %+v", i+1, known[i], want[i])
				}
				if unknown[i] != known[i] {
					t.Errorf("call %d: unknown client %+v, registered client %+v", i+1, unknown[i], known[i])
				}
			}
			s, _ := strconv.Atoi(knownResp.Header.Get("Retry-After"))
			if s < 1 || s > 6 {
				t.Fatalf("Retry-After %q, want 1 to 6 seconds", knownResp.Header.Get("Retry-After"))
			}
			time.Sleep(time.Duration(s)*time.Second + 200*time.Millisecond)
			if cc, _ := callAs(t, n, endpoint, c.ClientID, c.ClientSecret, addr); cc.Status != http.StatusOK {
				t.Errorf("right secret after the lock: %+v, want 200", cc)
			}
		})
	}

	t.Run("address", func(t *testing.T) {
		c := n.registerClient(map[string]any{"name": "address", "scopes": []string{"read:invoices"}, "businesses": []string{"biz_acme"}})
		for i := range 20 {
			cc, _ := callAs(t, n, "token", fmt.Sprintf("guess-%d", i), "x", "198.51.100.9")
			if wantStatus := map[bool]int{true: 429, false: 401}[i == 19]; cc.Status != wantStatus {
				t.Fatalf("failure %d from one address: %+v, want %d", i+1, cc, wantStatus)
			}
		}
		if cc, _ := callAs(t, n, "token", c.ClientID, c.ClientSecret, "198.51.100.9"); cc.Status != http.StatusTooManyRequests {
			t.Errorf("right secret from the locked address: %+v, want 429", cc)
		}
		if cc, _ := callAs(t, n, "token", c.ClientID, c.ClientSecret, "198.51.100.10"); cc.Status != http.StatusOK {
			t.Errorf("right secret from another address: %+v, want 200", cc)
		}
	})

	m := scrapeMetrics(t, n)
	for _, want := range []string{
		`oauthgate_throttle_locks_total{endpoint="token",subject="client"} 2`,
		`oauthgate_throttle_locks_total{endpoint="revoke",subject="client"} 2`,
		`oauthgate_throttle_locks_total{endpoint="introspect",subject="client"} 2`,
		`oauthgate_throttle_locks_total{endpoint="token",subject="client_address"} 1`,
		`oauthgate_throttle_refused_total{endpoint="introspect"} 52`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, secret := range []string{"no-such-client", "guess-", "192.0.2.", "198.51.100."} {
		if strings.Contains(m, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}

// TestThrottleClusterPostgres: a lock begun on one node is honoured by the
// other, which learns it from the store's change feed.
func TestThrottleClusterPostgres(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.CreateDB("throttle")
	// Each node is its own issuer here, so that the demo app's redirect
	// URI is the node's; the counts are shared through the database.
	env := []string{"OAUTHGATE_STORE=postgres " + dsn, "OAUTHGATE_THROTTLE_LOCK=30s", "OAUTHGATE_THROTTLE_LOCK_MAX=1m"}
	nodes := startNodes(t, nodeOptions{Caddyfile: throttleCaddyfile, Env: env}, nodeOptions{Caddyfile: throttleCaddyfile, Env: env})
	a, b := nodes[0], nodes[1]

	t.Run("sign-in", func(t *testing.T) {
		ua, sp := signInPage(t, a)
		for i := range 5 {
			p := ua.signInFrom(sp, "192.0.2.1", demoEmail, "wrong-password")
			if wantStatus := map[bool]int{true: 429, false: 401}[i == 4]; p.StatusCode != wantStatus {
				t.Fatalf("failure %d on A: %d, want %d", i+1, p.StatusCode, wantStatus)
			}
		}
		time.Sleep(propagationBound)
		ub, spb := signInPage(t, b)
		if p := ub.signInFrom(spb, "192.0.2.2", demoEmail, demoPassword); p.StatusCode != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
			t.Errorf("right password on B, from another address: %d, want 429 with Retry-After", p.StatusCode)
		}
	})

	t.Run("client authentication", func(t *testing.T) {
		c := a.registerClient(map[string]any{"name": "cluster", "scopes": []string{"read:invoices"}, "businesses": []string{"biz_acme"}})
		for i := range 5 {
			cc, _ := callAs(t, a, "token", c.ClientID, "wrong", "192.0.2.3")
			if wantStatus := map[bool]int{true: 429, false: 401}[i == 4]; cc.Status != wantStatus {
				t.Fatalf("failure %d on A: %+v, want %d", i+1, cc, wantStatus)
			}
		}
		time.Sleep(propagationBound)
		if cc, _ := callAs(t, b, "token", c.ClientID, c.ClientSecret, "192.0.2.4"); cc.Status != http.StatusTooManyRequests || cc.Error != "invalid_client" || !cc.RetryAfter {
			t.Errorf("right secret on B, from another address: %+v, want 429 invalid_client with Retry-After", cc)
		}
	})
}
