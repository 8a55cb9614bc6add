package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/oauthgate/oauthgate/tokenstore"
)

func postToken(t *testing.T, n *node, ctype, auth, body string) (*http.Response, errorBody) {
	t.Helper()
	req, _ := http.NewRequest("POST", n.URL+"/oauth/token", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e errorBody
	_ = json.Unmarshal(raw, &e)
	return resp, e
}

// TestTokenEndpointErrors: one row per RFC 6749 §5.2 rule.
func TestTokenEndpointErrors(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Errors", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	basicOf := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	good := basicOf(c.ClientID, c.ClientSecret)
	form := "application/x-www-form-urlencoded"
	creds := "&client_id=" + url.QueryEscape(c.ClientID) + "&client_secret=" + url.QueryEscape(c.ClientSecret)
	cases := []struct {
		name, ctype, auth, body string
		status                  int
		code                    string
		basicChallenge          bool
	}{
		{"wrong secret via Basic", form, basicOf(c.ClientID, "ysk_wrong"), "grant_type=client_credentials", 401, "invalid_client", true},
		{"unknown client via Basic", form, basicOf("nobody", "x"), "grant_type=client_credentials", 401, "invalid_client", true},
		{"wrong secret in body", form, "", "grant_type=client_credentials&client_id=" + url.QueryEscape(c.ClientID) + "&client_secret=nope", 401, "invalid_client", false},
		{"no credentials", form, "", "grant_type=client_credentials", 401, "invalid_client", false},
		{"malformed Basic", form, "Basic !!!notbase64", "grant_type=client_credentials", 401, "invalid_client", true},
		{"Basic without colon", form, "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), "grant_type=client_credentials", 401, "invalid_client", true},
		{"two auth methods", form, good, "grant_type=client_credentials&client_secret=x", 400, "invalid_request", false},
		{"missing grant_type", form, good, "scope=read:invoices", 400, "invalid_request", false},
		{"unsupported grant_type", form, good, "grant_type=password&username=a&password=b", 400, "unsupported_grant_type", false},
		{"grant not registered", form, good, "grant_type=authorization_code&code=x", 400, "unauthorized_client", false},
		{"scope beyond registration", form, good, "grant_type=client_credentials&scope=write:invoices", 400, "invalid_scope", false},
		{"malformed scope", form, good, "grant_type=client_credentials&scope=%22bad%22", 400, "invalid_scope", false},
		{"repeated parameter", form, good, "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request", false},
		{"unsupported content type", "text/plain", good, "grant_type=client_credentials", 400, "invalid_request", false},
		{"no content type", "", good, "grant_type=client_credentials", 400, "invalid_request", false},
		{"malformed JSON", "application/json", good, `{"grant_type":`, 400, "invalid_request", false},
		{"JSON array", "application/json", good, `["client_credentials"]`, 400, "invalid_request", false},
		{"JSON object value", "application/json", good, `{"grant_type":{"x":1}}`, 400, "invalid_request", false},
		{"oversized body", form, good, "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10), 413, "invalid_request", false},
		{"body creds ok but secret empty", form, "", "grant_type=client_credentials&client_id=" + url.QueryEscape(c.ClientID), 401, "invalid_client", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, e := postToken(t, n, tc.ctype, tc.auth, tc.body)
			if resp.StatusCode != tc.status || e.Error != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, e.Error, e.Description, tc.status, tc.code)
			}
			if got := resp.Header.Get("WWW-Authenticate") != ""; got != tc.basicChallenge {
				t.Errorf("WWW-Authenticate present=%v, want %v", got, tc.basicChallenge)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	// GET is not allowed.
	resp, err := http.Get(n.URL + "/oauth/token")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth/token: %v %v", err, resp.StatusCode)
	}
	// A good request still works after all that.
	if resp, e := postToken(t, n, form, "", "grant_type=client_credentials"+creds); resp.StatusCode != 200 {
		t.Errorf("good request: %d %+v", resp.StatusCode, e)
	}
	if strings.Contains(n.Logs(), c.ClientSecret) {
		t.Error("the log contains the client secret")
	}
}

// signingKey reads the node's active private key straight from its SQLite
// store, so the test can forge tokens that differ from real ones in exactly
// one respect.
func signingKey(t *testing.T, n *node) jwk.Key {
	t.Helper()
	s, err := tokenstore.Open(context.Background(), tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(n.DataDir, "caddy", "oauthgate", "oauthgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := s.ListKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %d", err, len(keys))
	}
	k, err := jwk.ParseKey(keys[0].PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forge signs claims with key under the given header values.
func forge(t *testing.T, key jwk.Key, alg jwa.SignatureAlgorithm, typ string, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	hdr := jws.NewHeaders()
	if typ != "" {
		_ = hdr.Set(jws.TypeKey, typ)
	}
	if kid, ok := key.Get(jwk.KeyIDKey); ok {
		_ = hdr.Set(jws.KeyIDKey, kid)
	}
	raw, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestGatewayRejections: one row per way a bearer token or request can be
// wrong. Each gets the RFC 6750 status, error code and challenge.
func TestGatewayRejections(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Gate", "scopes": []string{"read:invoices", "read:contacts"}, "businesses": []string{"biz_1"}})
	resp, _ := postToken(t, n, "application/x-www-form-urlencoded", "",
		"grant_type=client_credentials&client_id="+url.QueryEscape(c.ClientID)+"&client_secret="+url.QueryEscape(c.ClientSecret))
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	good := ccToken(t, n, c, "read:invoices")
	key := signingKey(t, n)
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{
			"iss": n.URL, "sub": c.ClientID, "aud": []string{n.URL}, "client_id": c.ClientID,
			"scope": "read:invoices", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"jti": "forged-" + now.Format("150405.000000"), "gid": "cc_forged",
		}
		if mod != nil {
			mod(m)
		}
		return m
	}
	alg := jwa.SignatureAlgorithm(mustGet(t, key, jwk.AlgorithmKey))
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreignKey, _ := jwk.FromRaw(foreign)
	_ = foreignKey.Set(jwk.KeyIDKey, mustGet(t, key, jwk.KeyIDKey))
	parts := strings.Split(good, ".")
	// A genuine token whose signature holds '-' or '_', re-encoded in the
	// standard alphabet ('+', '/').
	var standardAlphabet string
	for i := 0; i < 50 && standardAlphabet == ""; i++ {
		p := strings.Split(ccToken(t, n, c, "read:invoices"), ".")
		if strings.ContainsAny(p[2], "-_") {
			standardAlphabet = p[0] + "." + p[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(p[2])
		}
	}
	if standardAlphabet == "" {
		t.Fatal("no token with '-' or '_' in its signature")
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + mustGet(t, key, jwk.KeyIDKey) + `"}`))

	cases := []struct {
		name     string
		method   string
		path     string
		auth     string // full Authorization header
		business string
		status   int
		code     string
	}{
		{"control: forged-but-correct token passes", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "at+jwt", claims(nil)), "biz_1", 200, ""},
		{"no token", "GET", "/api/v1/accounting/invoices", "", "biz_1", 401, ""},
		{"basic instead of bearer", "GET", "/api/v1/accounting/invoices", "Basic YTpi", "biz_1", 400, "invalid_request"},
		{"empty bearer", "GET", "/api/v1/accounting/invoices", "Bearer ", "biz_1", 400, "invalid_request"},
		{"garbage", "GET", "/api/v1/accounting/invoices", "Bearer not-a-jwt", "biz_1", 401, "invalid_token"},
		{"three dots", "GET", "/api/v1/accounting/invoices", "Bearer ...", "biz_1", 401, "invalid_token"},
		{"huge junk", "GET", "/api/v1/accounting/invoices", "Bearer " + strings.Repeat("A", 8000), "biz_1", 401, "invalid_token"},
		{"tampered payload", "GET", "/api/v1/accounting/invoices", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"scope":"write:invoices"}`)) + "." + parts[2], "biz_1", 401, "invalid_token"},
		{"tampered signature", "GET", "/api/v1/accounting/invoices", "Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2]), "biz_1", 401, "invalid_token"},
		// One token, one string (RFC 7515 §2, RFC 4648 §3.5): the genuine
		// signature re-encoded decodes to the same bytes but is refused.
		{"padded signature", "GET", "/api/v1/accounting/invoices", "Bearer " + good + strings.Repeat("=", (4-len(parts[2])%4)%4), "biz_1", 401, "invalid_token"},
		{"signature with unused trailing bits set", "GET", "/api/v1/accounting/invoices", "Bearer " + parts[0] + "." + parts[1] + "." + setTrailingBits(t, parts[2]), "biz_1", 401, "invalid_token"},
		{"signature in the standard alphabet", "GET", "/api/v1/accounting/invoices", "Bearer " + standardAlphabet, "biz_1", 401, "invalid_token"},
		{"alg none", "GET", "/api/v1/accounting/invoices", "Bearer " + noneHeader + "." + parts[1] + ".", "biz_1", 401, "invalid_token"},
		{"foreign key, same kid", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, foreignKey, jwa.ES256, "at+jwt", claims(nil)), "biz_1", 401, "invalid_token"},
		{"expired", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "at+jwt", claims(func(m map[string]any) { m["exp"] = now.Add(-2 * time.Minute).Unix() })), "biz_1", 401, "invalid_token"},
		{"not yet valid", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "at+jwt", claims(func(m map[string]any) { m["nbf"] = now.Add(10 * time.Minute).Unix() })), "biz_1", 401, "invalid_token"},
		{"wrong typ", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "JWT", claims(nil)), "biz_1", 401, "invalid_token"},
		{"no typ", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "", claims(nil)), "biz_1", 401, "invalid_token"},
		{"wrong issuer", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "at+jwt", claims(func(m map[string]any) { m["iss"] = "https://evil.example" })), "biz_1", 401, "invalid_token"},
		{"wrong audience", "GET", "/api/v1/accounting/invoices", "Bearer " + forge(t, key, alg, "at+jwt", claims(func(m map[string]any) { m["aud"] = []string{"https://other.example"} })), "biz_1", 401, "invalid_token"},
		{"missing scope", "POST", "/api/v1/accounting/invoices", "Bearer " + good, "biz_1", 403, "insufficient_scope"},
		{"unmapped route", "GET", "/api/v1/hr/employees", "Bearer " + good, "biz_1", 403, "access_denied"},
		{"dot-dot path", "GET", "/api/v1/accounting/invoices/../../crm/contacts", "Bearer " + good, "biz_1", 400, "invalid_request"},
		{"encoded slash", "GET", "/api/v1/accounting/invoices%2F..%2F..%2Fcrm", "Bearer " + good, "biz_1", 400, "invalid_request"},
		{"no business header", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "", 400, "invalid_request"},
		{"foreign business", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "biz_2", 403, "business_not_allowed"},
		{"business with comma", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "biz_1,biz_2", 400, "invalid_request"},
		{"business with space", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "biz 1", 400, "invalid_request"},
		{"business dot-dot", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "..", 400, "invalid_request"},
		{"business too long", "GET", "/api/v1/accounting/invoices", "Bearer " + good, strings.Repeat("b", 129), 400, "invalid_request"},
		{"control: good token", "GET", "/api/v1/accounting/invoices", "Bearer " + good, "biz_1", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, n.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.path != req.URL.Path && !strings.Contains(tc.path, "%2F") {
				req.URL.Opaque = tc.path // keep "..": Go would not clean it, but be explicit
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.business != "" {
				req.Header.Set("X-Business-Id", tc.business)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, raw)
			}
			if tc.status == 200 {
				return
			}
			e := decodeError(t, raw)
			challenge := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, `Bearer realm="oauthgate"`) {
				t.Errorf("WWW-Authenticate %q", challenge)
			}
			if tc.code == "" {
				if strings.Contains(challenge, "error=") {
					t.Errorf("a request without credentials gets a bare challenge (RFC 6750 §3.1), got %q", challenge)
				}
				return
			}
			if e.Error != tc.code || !strings.Contains(challenge, `error="`+tc.code+`"`) {
				t.Errorf("error %q / challenge %q, want %q", e.Error, challenge, tc.code)
			}
		})
	}
}

func mustGet(t *testing.T, k jwk.Key, name string) string {
	t.Helper()
	v, ok := k.Get(name)
	if !ok {
		t.Fatalf("key has no %s", name)
	}
	switch v := v.(type) {
	case string:
		return v
	case jwa.SignatureAlgorithm:
		return v.String()
	case interface{ String() string }:
		return v.String()
	}
	t.Fatalf("key %s has type %T", name, v)
	return ""
}

// setTrailingBits sets the unused low bits of the last character of an
// unpadded base64url segment whose length leaves some (len%4 of 2 or 3).
func setTrailingBits(t *testing.T, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var unused int
	switch len(seg) % 4 {
	case 2:
		unused = 0x0f
	case 3:
		unused = 0x03
	default:
		t.Fatalf("segment of length %d has no unused bits", len(seg))
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|unused])
}

// flip changes one character in the middle of s.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
