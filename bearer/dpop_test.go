package bearer

import (
	"net/http"
	"testing"
)

// TestCredential: RFC 9449 §7.1: "DPoP <token>" as well as "Bearer
// <token>", scheme names without regard to case, anything else malformed.
func TestCredential(t *testing.T) {
	for _, tc := range []struct {
		headers          []string
		token            string
		scheme           Scheme
		present, invalid bool
	}{
		{nil, "", SchemeBearer, false, false},
		{[]string{"DPoP abc"}, "abc", SchemeDPoP, true, false},
		{[]string{"dpop abc"}, "abc", SchemeDPoP, true, false},
		{[]string{"DPoP  abc"}, "abc", SchemeDPoP, true, false},
		{[]string{"Bearer abc"}, "abc", SchemeBearer, true, false},
		{[]string{"DPoP "}, "", SchemeDPoP, true, true},
		{[]string{"DPoP a b"}, "", SchemeDPoP, true, true},
		{[]string{"DPoP a\tb"}, "", SchemeDPoP, true, true},
		{[]string{"DPoPabc"}, "", SchemeBearer, true, true},
		{[]string{"DPoP abc", "DPoP abc"}, "", SchemeBearer, true, true},
		{[]string{"Basic YTpi"}, "", SchemeBearer, true, true},
	} {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("Authorization", v)
		}
		tok, scheme, present, malformed := Credential(h)
		if tok != tc.token || present != tc.present || malformed != tc.invalid || (!malformed && scheme != tc.scheme) {
			t.Errorf("%q: %q %v %v %v", tc.headers, tok, scheme, present, malformed)
		}
		if UsesDPoP(h) != (len(tc.headers) == 1 && tc.scheme == SchemeDPoP) {
			t.Errorf("%q: UsesDPoP %v", tc.headers, UsesDPoP(h))
		}
	}
}

// TestDPoPChallenge: §7.1's challenge: the DPoP scheme with algs.
func TestDPoPChallenge(t *testing.T) {
	got := Challenge{Realm: "r", Error: "invalid_dpop_proof", Description: "d", DPoP: true, Algs: "ES256 EdDSA"}.String()
	if want := `DPoP realm="r", error="invalid_dpop_proof", error_description="d", algs="ES256 EdDSA"`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Challenge{Realm: "r", Algs: "ES256"}).String(); got != `Bearer realm="r"` {
		t.Errorf("a Bearer challenge has no algs: %s", got)
	}
}
