package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestExamplesShowTheirBrand: the sign-in, consent, sign-out and error
// pages of each example name its platform, in its accent colour, and never
// oauthgate.
func TestExamplesShowTheirBrand(t *testing.T) {
	for _, tc := range []struct {
		caddyfile, brand, mark, accent string
	}{
		{"examples/yionstack/Caddyfile", "YionStack", "YS", "#2563eb"},
		{"examples/yappointment/Caddyfile", "yAppointment", "yA", "#7c3aed"},
		{"examples/yuvo/Caddyfile", "Yuvo", "Y", "#0f766e"},
		{"examples/yoco/Caddyfile", "Yoco", "Y", "#0ea5e9"},
	} {
		t.Run(tc.brand, func(t *testing.T) {
			n := startNode(t, nodeOptions{Caddyfile: tc.caddyfile})
			const email, password = "brand@example.com", "brand-password-1"
			if st, body := adminRaw(t, n, "POST", "/oauthgate/users", `{"email": "`+email+`", "password": "`+password+`",
				"name": "Brand Tester", "businesses": [{"id": "biz_brand", "name": "Brand Co"}]}`); st != http.StatusCreated {
				t.Fatalf("creating user: %d %s", st, body)
			}
			c := n.registerClient(map[string]any{"name": "Brand App", "grant_types": []string{"authorization_code"},
				"scopes": []string{"openid"}, "redirect_uris": []string{"http://127.0.0.1/cb"}})

			var md struct {
				Authorization string `json:"authorization_endpoint"`
				EndSession    string `json:"end_session_endpoint"`
			}
			resp, err := http.Get(n.URL + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&md)
			resp.Body.Close()
			if err != nil || md.Authorization == "" || md.EndSession == "" {
				t.Fatalf("discovery: %+v %v", md, err)
			}

			branded := func(what string, p *page) {
				t.Helper()
				for _, want := range []string{`<span class="brand-name">` + tc.brand + `</span>`,
					`<span class="logo mark" aria-hidden="true">` + tc.mark + `</span>`} {
					if !strings.Contains(p.Body, want) {
						t.Errorf("%s page lacks %q", what, want)
					}
				}
				if strings.Count(p.Body, "oauthgate") != strings.Count(p.Body, "/assets/oauthgate.css") {
					t.Errorf("%s page mentions oauthgate beyond its stylesheet", what)
				}
				checkPageHeaders(t, what, p.Header)
				css := regexp.MustCompile(`href="([^"]*brand\.css[^"]*)"`).FindStringSubmatch(p.Body)
				if css == nil {
					t.Fatalf("%s page links no brand.css", what)
				}
				resp, err := http.Get(n.URL + strings.ReplaceAll(css[1], "&amp;", "&"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), "--primary: "+tc.accent+";") {
					t.Errorf("%s brand.css: %d\n%s", what, resp.StatusCode, b)
				}
			}

			ua := newUserAgent(t)
			auth := md.Authorization + "?" + url.Values{"response_type": {"code"}, "client_id": {c.ClientID},
				"redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"openid"}, "state": {"s"}}.Encode()
			p := ua.get(auth)
			if p.Location == nil {
				t.Fatalf("authorize: %d\n%s", p.StatusCode, p.Body)
			}
			sp := ua.get(p.Location.String())
			if sp.StatusCode != 200 || !strings.Contains(sp.Body, "<title>Sign in to "+tc.brand+"</title>") {
				t.Fatalf("sign-in page: %d\n%s", sp.StatusCode, sp.Body)
			}
			branded("sign-in", sp)

			p = ua.signIn(sp, email, password)
			if p.Location == nil {
				t.Fatalf("sign-in: %d\n%s", p.StatusCode, p.Body)
			}
			cp := ua.get(p.Location.String()) // the authorization request again
			if cp.Location != nil {
				cp = ua.get(cp.Location.String())
			}
			if cp.StatusCode != 200 || !strings.Contains(cp.Body, "wants to access your "+tc.brand+" account") {
				t.Fatalf("consent page: %d\n%s", cp.StatusCode, cp.Body)
			}
			branded("consent", cp)
			if !strings.Contains(cp.Body, `<button class="link" type="submit">Sign out</button>`) {
				t.Error("the consent page has no sign-out button")
			}

			so := ua.get(md.EndSession)
			if so.StatusCode != 200 || !strings.Contains(so.Body, "Sign out of "+tc.brand+"?") {
				t.Fatalf("sign-out question: %d\n%s", so.StatusCode, so.Body)
			}
			branded("sign-out", so)

			ep := ua.get(md.Authorization)
			if ep.StatusCode != http.StatusBadRequest {
				t.Fatalf("error page: %d", ep.StatusCode)
			}
			branded("error", ep)
		})
	}
}
