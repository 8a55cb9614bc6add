package authserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// The fuzz targets of the authorization server's request parsing. Their
// seeds, below and in testdata/fuzz/<target>, run in every `go test`;
// `go test -run '^$' -fuzz FuzzX ./authserver/` explores further.

// FuzzParseParams: a token-endpoint body, form-encoded or JSON, is either
// refused or read as one value per parameter, exactly as sent. A parameter
// sent twice is refused in both encodings (RFC 6749 §3.2).
func FuzzParseParams(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "grant_type=client_credentials&scope=read%3Ainvoices"},
		{"application/x-www-form-urlencoded; charset=UTF-8", "grant_type=refresh_token&refresh_token=abc"},
		{"application/x-www-form-urlencoded", "a=1&a=2"},
		{"application/x-www-form-urlencoded", "a=%zz"},
		{"application/x-www-form-urlencoded", "a;b=1"},
		{"application/x-www-form-urlencoded", "=&&="},
		{"application/json", `{"grant_type":"authorization_code","code":"c","code_verifier":"v"}`},
		{"application/json", `{"client_id":"a","client_id":"b"}`},
		{"application/json", `{"a":1,"b":true,"c":null,"d":1.5e3}`},
		{"application/json", `{"a":{"b":1}}`},
		{"application/json", `{"a":["x"]}`},
		{"application/json", `["a"]`},
		{"application/json", `{"a":"\u0000"}`},
		{"application/json", `{"a":"1"} {"b":"2"}`},
		{"application/json; charset=utf-8", `{"A":"1","a":"2"}`},
		{"text/plain", "a=1"},
		{"", ""},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		p, e := parseParams(httptest.NewRecorder(), r)
		if e != nil {
			if p != nil || e.Code == "" || e.Status < 400 {
				t.Fatalf("refusal %+v with params %v", e, p)
			}
			return
		}
		switch {
		case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
			vals, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("accepted a body url.ParseQuery refuses: %v", err)
			}
			if len(vals) != len(p) {
				t.Fatalf("%d parameters read from %d", len(p), len(vals))
			}
			for k, vs := range vals {
				if len(vs) != 1 || p[k] != vs[0] {
					t.Fatalf("parameter %q: read %q from %q", k, p[k], vs)
				}
			}
		case strings.HasPrefix(ct, "application/json"):
			keys, ok := jsonObjectKeys(body)
			if !ok {
				t.Fatalf("accepted %q, which is not one JSON object", body)
			}
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[k] {
					t.Fatalf("accepted %q, which repeats %q", body, k)
				}
				seen[k] = true
			}
			for k := range p {
				if !seen[k] {
					t.Fatalf("parameter %q was not sent", k)
				}
			}
		}
	})
}

// jsonObjectKeys lists the top-level keys of a JSON object in order,
// duplicates included, the slow and obvious way.
func jsonObjectKeys(b []byte) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // something after the object
	}
	return keys, true
}

// FuzzBasicCredentials: an Authorization header is either no credential,
// a refusal, or exactly one client id and secret, which encoding them back
// the RFC 6749 §2.3.1 way reproduces.
func FuzzBasicCredentials(f *testing.F) {
	enc := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	for _, h := range []string{
		enc("app", "app-secret"), enc("yion_a b", "ysk_:%+/="), enc("app", ""), enc("", "secret"),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("app:sec:ret")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("app")),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("app:secret")),
		"Basic " + base64.URLEncoding.EncodeToString([]byte("app:s?c>")),
		"basic YXBwOnNlY3JldA==", "Basic  YXBwOnNlY3JldA==", "Basic YXBwOnNlY3JldA== ", "BasicYXBwOnNlY3JldA==",
		"Basic %zz", "Basic " + base64.StdEncoding.EncodeToString([]byte("a%zz:b")), "Bearer abc", "Basic", "",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		id, secret, basic, e := basicCredentials(r)
		switch {
		case h == "":
			if basic || e != nil || id != "" || secret != "" {
				t.Fatalf("no header: %q %q %v %v", id, secret, basic, e)
			}
		case e != nil:
			if id != "" || secret != "" {
				t.Fatalf("refused, yet read %q %q", id, secret)
			}
			if e.Status != http.StatusUnauthorized {
				t.Fatalf("refusal with status %d", e.Status)
			}
		default:
			if !basic || id == "" {
				t.Fatalf("accepted %q as id %q, basic %v", h, id, basic)
			}
			r2 := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
			r2.Header.Set("Authorization", enc(id, secret))
			id2, secret2, _, e2 := basicCredentials(r2)
			if e2 != nil || id2 != id || secret2 != secret {
				t.Fatalf("%q read as %q:%q, encoded back as %q:%q (%v)", h, id, secret, id2, secret2, e2)
			}
		}
	})
}

// FuzzAuthorizeRequest: whatever the query, an authorization request is
// refused on a page (no redirect at all), refused by a redirect to a URI
// the client registered, or accepted within what the client registered:
// its redirect URI, its scopes, PKCE for a public client, response_type
// code (RFC 6749 §3.1.2.4, §4.1.2.1, RFC 7636 §4.4.1, RFC 9700 §2.1).
func FuzzAuthorizeRequest(f *testing.F) {
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, q := range []string{
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+read%3Ainvoices&state=s",
		"response_type=code&client_id=web&scope=read%3Ainvoices",
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F",
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2FAPP.example%2Fcb",
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&redirect_uri=https%3A%2F%2Fevil.example%2F",
		"response_type=code&client_id=spa&code_challenge=" + challenge + "&code_challenge_method=S256",
		"response_type=code&client_id=spa&code_challenge=" + challenge,
		"response_type=code&client_id=spa",
		"response_type=token&client_id=web",
		"response_type=code&client_id=web&scope=admin",
		"response_type=code&client_id=web&prompt=none+login&max_age=-1",
		"response_type=code&client_id=web&request=eyJ",
		"response_type=code&client_id=web&client_id=spa",
		"response_type=code&client_id=svc",
		"client_id=nobody",
		"",
	} {
		f.Add(q)
	}
	s := openServer(f, Config{Issuer: testIssuer, Scopes: []Scope{{Name: "read:invoices"}}}, tokens.Config{StaticClients: []*tokenstore.Client{
		{ID: "web", SecretHash: tokens.HashSecret("web-secret"), Name: "Web", GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid", "read:invoices"}, RedirectURIs: []string{"https://app.example/cb", "https://app.example/other"}},
		{ID: "spa", Public: true, Name: "SPA", GrantTypes: []string{"authorization_code"},
			Scopes: []string{"read:invoices"}, RedirectURIs: []string{"http://127.0.0.1/cb"}},
		{ID: "svc", SecretHash: tokens.HashSecret("svc-secret"), Name: "Service", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read:invoices"}, RedirectURIs: []string{"https://svc.example/cb"}},
	}})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http would not hand this query over either
		}
		req, perr, oerr := s.parseAuthorize(ctx, q)
		if perr != nil {
			if req != nil || oerr != nil {
				t.Fatalf("a page error with a request or a redirect: %+v %+v", req, oerr)
			}
			return
		}
		if req == nil || req.client == nil || req.client.ID != q.Get("client_id") || len(q["client_id"]) != 1 {
			t.Fatalf("request %+v for client_id %q", req, q["client_id"])
		}
		// Any redirect, error or code, goes to a registered URI, as sent.
		if !slices.Contains(req.client.RedirectURIs, req.redirectURI) {
			t.Fatalf("redirect to unregistered %q", req.redirectURI)
		}
		if req.redirectSent != (q.Get("redirect_uri") != "") || (req.redirectSent && req.redirectURI != q.Get("redirect_uri")) {
			t.Fatalf("redirect_uri %q became %q (sent %v)", q.Get("redirect_uri"), req.redirectURI, req.redirectSent)
		}
		if oerr != nil {
			if oerr.Code == "" {
				t.Fatalf("redirect error without a code: %+v", oerr)
			}
			return
		}
		if q.Get("response_type") != "code" || !slices.Contains(req.client.GrantTypes, "authorization_code") {
			t.Fatalf("accepted response_type %q for grants %v", q.Get("response_type"), req.client.GrantTypes)
		}
		if len(req.scopes) == 0 {
			t.Fatal("accepted with no scope")
		}
		for _, sc := range req.scopes {
			if !slices.Contains(req.client.Scopes, sc) {
				t.Fatalf("scope %q beyond the client's %v", sc, req.client.Scopes)
			}
		}
		if req.client.Public && !validS256Challenge(req.challenge) {
			t.Fatalf("public client accepted with challenge %q", req.challenge)
		}
		if req.challenge != "" && q.Get("code_challenge_method") != "S256" {
			t.Fatalf("challenge accepted with method %q", q.Get("code_challenge_method"))
		}
		for k, v := range q {
			if len(v) > 1 {
				t.Fatalf("parameter %q repeated, accepted", k)
			}
		}
		if len(req.state) > maxStateLen || len(req.nonce) > maxNonceLen {
			t.Fatalf("state of %d, nonce of %d bytes accepted", len(req.state), len(req.nonce))
		}
	})
}
