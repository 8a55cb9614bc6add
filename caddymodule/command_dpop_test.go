package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestClientCreateDPoPFlag: `caddy oauthgate client create
// --dpop-bound-access-tokens` registers the client with
// dpop_bound_access_tokens (RFC 9449 §5.2) through the admin API.
func TestClientCreateDPoPFlag(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/oauthgate/clients" || json.Unmarshal(b, &got) != nil {
			t.Errorf("%s %s %s", r.Method, r.URL.Path, b)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"client_id":"c"}`))
	}))
	defer srv.Close()
	cmd := &cobra.Command{Use: "oauthgate"}
	buildCommand(cmd)
	cmd.SetOut(io.Discard)
	cmd.SetArgs([]string{"client", "create", "--name", "Mobile", "--public", "--dpop-bound-access-tokens",
		"--address", strings.TrimPrefix(srv.URL, "http://")})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got["dpop_bound_access_tokens"] != true || got["public"] != true {
		t.Fatalf("admin request body %v", got)
	}
}
