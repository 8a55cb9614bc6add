package caddymodule

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/oauthgate/oauthgate/tokens"
)

// runHash runs `oauthgate hash-secret args…` with stdin and returns what it
// printed and its error.
func runHash(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "oauthgate"}
	addHashCommand(root)
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"hash-secret"}, args...))
	err := root.Execute()
	return out.String(), err
}

// TestHashSecretCommand: hash-secret prints what secret_hash and
// password_hash take, reading the secret from standard input, never
// printing it back.
func TestHashSecretCommand(t *testing.T) {
	const secret = "ysk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	for _, tc := range []struct {
		name, stdin string
		args        []string
	}{
		{"a line of standard input", secret + "\n", nil},
		{"CRLF", secret + "\r\n", nil},
		{"no final newline", secret, nil},
		{"--plaintext", "", []string{"--plaintext", secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHash(t, tc.stdin, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			h, err := tokens.ParseSecretHash(strings.TrimSpace(out))
			if err != nil || !tokens.SecretMatches(h, secret) {
				t.Errorf("output %q is not the hash of the secret: %v", out, err)
			}
		})
	}
	for _, tc := range []struct{ name, stdin, want string }{
		{"nothing on standard input", "", "none given"},
		{"an empty line", "\n", "is empty"},
		{"a short secret, whose fast hash would be guessed", "demo-app-secret\n", "want at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHash(t, tc.stdin)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Errorf("output %q, error %v; want an error containing %q", out, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "demo-app-secret") {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}

	t.Run("--user: bcrypt for password_hash", func(t *testing.T) {
		out, err := runHash(t, "correct horse battery\n", "--user")
		h := strings.TrimSpace(out)
		if err != nil || !strings.HasPrefix(h, "$2a$12$") || bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse battery")) != nil {
			t.Fatalf("output %q, %v", out, err)
		}
		if _, err := runHash(t, "short\n", "--user"); err == nil || !strings.Contains(err.Error(), "at least 8") {
			t.Errorf("a short password: %v", err)
		}
	})

	t.Run("--generate", func(t *testing.T) {
		out, err := runHash(t, "", "--generate", "--prefix", "ysk_")
		var got struct {
			Secret string `json:"client_secret"`
			Hash   string `json:"secret_hash"`
		}
		if err != nil || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("output %q, %v", out, err)
		}
		h, err := tokens.ParseSecretHash(got.Hash)
		if !strings.HasPrefix(got.Secret, "ysk_") || len(got.Secret) != 4+43 || err != nil || !tokens.SecretMatches(h, got.Secret) {
			t.Errorf("generated %+v (%v)", got, err)
		}
		if _, err := runHash(t, "", "--generate", "--user"); err == nil {
			t.Error("--generate --user was accepted")
		}
	})
}
