package bearer

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	tests := []struct {
		name      string
		headers   []string
		token     string
		present   bool
		malformed bool
	}{
		{"no header (§3.1: no error code)", nil, "", false, false},
		{"bearer token", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", true, false},
		{"scheme is case-insensitive (RFC 9110 §11.1)", []string{"bEARER abc"}, "abc", true, false},
		{"extra spaces before the token", []string{"Bearer   abc"}, "abc", true, false},
		{"repeated header", []string{"Bearer abc", "Bearer abc"}, "", true, true},
		{"another scheme", []string{"Basic YTpi"}, "", true, true},
		{"scheme only", []string{"Bearer"}, "", true, true},
		{"scheme and space only", []string{"Bearer "}, "", true, true},
		{"empty token", []string{"Bearer    "}, "", true, true},
		{"two tokens", []string{"Bearer abc def"}, "", true, true},
		{"tab inside", []string{"Bearer abc\tdef"}, "", true, true},
		{"no space after the scheme", []string{"Bearerabc"}, "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("Authorization", v)
			}
			token, present, malformed := Token(h)
			if token != tt.token || present != tt.present || malformed != tt.malformed {
				t.Errorf("Token(%q) = %q, %v, %v; want %q, %v, %v", tt.headers, token, present, malformed, tt.token, tt.present, tt.malformed)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		c    Challenge
		want string
	}{
		{Challenge{Realm: "oauthgate"}, `Bearer realm="oauthgate"`},
		{Challenge{Realm: "r", Error: "invalid_token", Description: "expired"}, `Bearer realm="r", error="invalid_token", error_description="expired"`},
		{Challenge{Realm: "r", Error: "insufficient_scope", Description: "d", Scope: "read:x"}, `Bearer realm="r", error="insufficient_scope", error_description="d", scope="read:x"`},
		{Challenge{Realm: "r", ResourceMetadata: "https://api/.well-known/oauth-protected-resource"}, `Bearer realm="r", resource_metadata="https://api/.well-known/oauth-protected-resource"`},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v.String() = %s, want %s", tt.c, got, tt.want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	c := Challenge{Realm: "r", Error: "invalid_token", Description: "d"}
	for _, status := range []int{400, 401, 403, 503} {
		h := http.Header{}
		SetHeaders(h, status, c)
		if got := h.Values("WWW-Authenticate"); (status != 503) != (len(got) == 1) {
			t.Errorf("status %d: WWW-Authenticate %q", status, got)
		}
		if got := h.Values("Retry-After"); (status == 503) != (len(got) == 1) {
			t.Errorf("status %d: Retry-After %q", status, got)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("status %d: Cache-Control %q", status, h.Get("Cache-Control"))
		}
	}
	// Setting twice leaves one of each.
	h := http.Header{}
	SetHeaders(h, 503, c)
	SetHeaders(h, 503, c)
	if len(h.Values("Retry-After")) != 1 {
		t.Errorf("Retry-After doubled: %q", h.Values("Retry-After"))
	}
}

func TestValidRealm(t *testing.T) {
	for realm, want := range map[string]bool{"oauthgate": true, "api example": true, `a"b`: false, `a\b`: false, "a\r\nb": false} {
		if ValidRealm(realm) != want {
			t.Errorf("ValidRealm(%q) = %v", realm, !want)
		}
	}
}

// BenchmarkToken is the Authorization header check alone, over a token the
// size of a real ES256 access token (~600 bytes).
func BenchmarkToken(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0."+strings.Repeat("eyJpc3MiOiJodHRwOi8vYmVuY2gudGVzdCJ9", 14)+".c2lnbmF0dXJl")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, bad := Token(r.Header); !ok || bad {
			b.Fatal("not a bearer token")
		}
	}
}
