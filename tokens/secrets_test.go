package tokens

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestSecrets(t *testing.T) {
	a, err := NewSecret("ysk_")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret("ysk_")
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, "ysk_") {
		t.Errorf("secret %q lacks the prefix", a)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, "ysk_"))
	if err != nil || len(raw) != 32 {
		t.Errorf("secret body: %d bytes, %v; want 32 bytes of base64url", len(raw), err)
	}

	h := HashSecret(a)
	if len(h) != 32 {
		t.Errorf("hash has %d bytes", len(h))
	}
	for _, tt := range []struct {
		name   string
		hash   []byte
		secret string
		want   bool
	}{
		{"right secret", h, a, true},
		{"other secret", h, b, false},
		{"secret without prefix", h, strings.TrimPrefix(a, "ysk_"), false},
		{"empty secret", h, "", false},
		{"no hash (public client)", nil, "", false},
		{"short hash", h[:16], a, false},
	} {
		if got := SecretMatches(tt.hash, tt.secret); got != tt.want {
			t.Errorf("%s: SecretMatches = %v", tt.name, got)
		}
	}
}
