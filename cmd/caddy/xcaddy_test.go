package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestXcaddyManifest keeps xcaddy.json (xcaddy's Builder JSON) naming the
// Caddy version go.mod builds with, and this plugin.
func TestXcaddyManifest(t *testing.T) {
	raw, err := os.ReadFile("../../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			ModulePath string `json:"module_path"`
		} `json:"plugins"`
		Replacements []struct {
			Old string `json:"old"`
			New string `json:"new"`
		} `json:"replacements"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/caddyserver/caddy/v2 (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/caddyserver/caddy/v2")
	}
	if b.CaddyVersion != string(m[1]) {
		t.Errorf("xcaddy.json caddy_version %q, go.mod has %s", b.CaddyVersion, m[1])
	}
	if len(b.Plugins) != 1 || b.Plugins[0].ModulePath != "github.com/oauthgate/oauthgate" {
		t.Errorf("plugins = %+v", b.Plugins)
	}
}
