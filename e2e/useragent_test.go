package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The demo user and app of the root Caddyfile.
const (
	demoEmail        = "demo@example.com"
	demoPassword     = "demo-password"
	demoClientID     = "demo-app"
	demoClientSecret = "demo-app-secret"
)

// userAgent is a browser as far as the authorization endpoint can tell: a
// cookie jar, forms posted as the pages define them, and redirects seen
// one at a time.
type userAgent struct {
	t *testing.T
	c *http.Client
}

func newUserAgent(t *testing.T) *userAgent {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &userAgent{t: t, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is one response of the browser flow.
type page struct {
	*http.Response
	Body string
	// Location is the redirect target, resolved; nil when there is none.
	Location *url.URL
}

func (ua *userAgent) do(req *http.Request) *page {
	ua.t.Helper()
	resp, err := ua.c.Do(req)
	if err != nil {
		ua.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := &page{Response: resp, Body: string(b)}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := req.URL.Parse(loc)
		if err != nil {
			ua.t.Fatalf("bad Location %q: %v", loc, err)
		}
		p.Location = u
	}
	return p
}

func (ua *userAgent) get(rawURL string) *page {
	ua.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		ua.t.Fatal(err)
	}
	return ua.do(req)
}

func (ua *userAgent) post(rawURL string, form url.Values) *page {
	ua.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		ua.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ua.do(req)
}

// submit posts the page's form with its hidden fields, the selects' chosen
// options, and the values given (which win).
func (ua *userAgent) submit(p *page, values url.Values) *page {
	ua.t.Helper()
	f := parseForm(ua.t, p.Body)
	for k, v := range values {
		f.Fields[k] = v
	}
	return ua.post(p.Request.URL.ResolveReference(&url.URL{Path: f.Action}).String(), f.Fields)
}

// form is the first <form> of a page.
type form struct {
	Action string
	Fields url.Values
	// Options are the option values of each select.
	Options map[string][]string
}

func parseForm(t *testing.T, body string) form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing page: %v", err)
	}
	f := form{Fields: url.Values{}, Options: map[string][]string{}}
	var found bool
	var walk func(n *html.Node, in string)
	attr := func(n *html.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	walk = func(n *html.Node, sel string) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if found {
					return
				}
				found = true
				f.Action, _ = attr(n, "action")
			case "input":
				name, _ := attr(n, "name")
				typ, _ := attr(n, "type")
				if name != "" && typ == "hidden" {
					v, _ := attr(n, "value")
					f.Fields.Set(name, v)
				}
			case "select":
				sel, _ = attr(n, "name")
			case "option":
				v, _ := attr(n, "value")
				f.Options[sel] = append(f.Options[sel], v)
				if _, ok := attr(n, "selected"); ok || !f.Fields.Has(sel) {
					f.Fields.Set(sel, v)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, sel)
		}
	}
	walk(doc, "")
	if !found {
		t.Fatalf("no form on the page:\n%s", body)
	}
	return f
}

// signIn fills the sign-in page p (reached by a redirect) and returns the
// answer to the post.
func (ua *userAgent) signIn(p *page, email, password string) *page {
	ua.t.Helper()
	return ua.submit(p, url.Values{"email": {email}, "password": {password}})
}

// authorize runs the browser flow from an authorize URL until the client's
// redirect URI is reached: it signs in as the demo user and allows for
// business when asked. It returns the redirect to the client.
func (ua *userAgent) authorize(authURL, business string) *url.URL {
	return ua.authorizeAs(authURL, demoEmail, demoPassword, business)
}

func (ua *userAgent) authorizeAs(authURL, email, password, business string) *url.URL {
	ua.t.Helper()
	next := authURL
	for range 8 {
		p := ua.get(next)
		switch {
		case p.StatusCode == http.StatusOK && strings.Contains(p.Request.URL.Path, "/sign-in"):
			p = ua.signIn(p, email, password)
		case p.StatusCode == http.StatusOK && strings.Contains(p.Request.URL.Path, "/consent"):
			v := url.Values{"decision": {"allow"}}
			if business != "" {
				v.Set("business_id", business)
			}
			p = ua.submit(p, v)
		}
		if p.StatusCode != http.StatusSeeOther || p.Location == nil {
			ua.t.Fatalf("%s: %d, no redirect:\n%s", p.Request.URL, p.StatusCode, p.Body)
		}
		if !strings.Contains(p.Location.Path, "/sign-in") && !strings.Contains(p.Location.Path, "/consent") &&
			!strings.HasSuffix(p.Location.Path, "/authorize") {
			return p.Location
		}
		next = p.Location.String()
	}
	ua.t.Fatalf("authorization of %s did not reach the client", authURL)
	return nil
}

// codeFrom returns the code of a successful authorization response, after
// checking its state and iss.
func codeFrom(t *testing.T, cb *url.URL, state, issuer string) string {
	t.Helper()
	q := cb.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization failed: %s", cb)
	}
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %s: want state %q and iss %q", cb, state, issuer)
	}
	return q.Get("code")
}
