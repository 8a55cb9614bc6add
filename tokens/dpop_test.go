package tokens

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TestMintBindsDPoPKey: RFC 9449 §6.1: a bound access token carries the
// key's thumbprint in cnf.jkt and Verify returns it; an unbound one has no
// cnf at all.
func TestMintBindsDPoPKey(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	raw, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g", JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	seg := strings.Split(raw, ".")[1]
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if cnf, _ := m["cnf"].(map[string]any); cnf["jkt"] != jkt {
		t.Fatalf("cnf = %v", m["cnf"])
	}
	c, err := s.Verify(raw)
	if err != nil || c.JKT != jkt {
		t.Fatalf("Verify: %v, jkt %q", err, c.JKT)
	}
	raw, _, _ = s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g"})
	b, _ = base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if strings.Contains(string(b), "cnf") {
		t.Fatalf("unbound token has a cnf: %s", b)
	}
	if c, err := s.Verify(raw); err != nil || c.JKT != "" {
		t.Fatalf("unbound: %v %q", err, c.JKT)
	}
}

// TestOpaqueCarriesDPoPKey: an opaque reference token keeps its binding.
func TestOpaqueCarriesDPoPKey(t *testing.T) {
	s := newService(t, &opaqueStore{Store: openStore(t)}, opaqueConfig(Config{}))
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	raw, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g", JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Verify(raw); err != nil || c.JKT != jkt {
		t.Fatalf("Verify: %v, jkt %q", err, c.JKT)
	}
}
