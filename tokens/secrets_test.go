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

// TestSecretHashText: a static client's secret_hash is the hash the store
// keeps, written "sha256:<hex>"; anything else is refused.
func TestSecretHashText(t *testing.T) {
	h := HashSecret("demo-app-secret")
	text := FormatSecretHash(h)
	if text != "sha256:81ba29a3c94c9cf43ff329391ab198559a0418b4a17436642403a88478987654" {
		t.Fatalf("FormatSecretHash = %q", text)
	}
	got, err := ParseSecretHash(text)
	if err != nil || !SecretMatches(got, "demo-app-secret") || SecretMatches(got, "demo-app-secreT") {
		t.Fatalf("ParseSecretHash(%q) = %x, %v", text, got, err)
	}
	if up, err := ParseSecretHash("sha256:" + strings.ToUpper(text[7:])); err != nil || !SecretMatches(up, "demo-app-secret") {
		t.Errorf("upper-case hex: %v", err)
	}
	for _, bad := range []string{
		"", "demo-app-secret", text[7:], "sha512:" + text[7:], "SHA256:" + text[7:],
		text[:len(text)-2], text + "00", "sha256:" + strings.Repeat("g", 64), " " + text,
		"$2a$12$" + strings.Repeat("a", 53),
	} {
		if h, err := ParseSecretHash(bad); err == nil {
			t.Errorf("ParseSecretHash(%q) = %x, want an error", bad, h)
		}
	}
}
