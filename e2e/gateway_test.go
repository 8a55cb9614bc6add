package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// overrideUpstream is an upstream that honours method-override headers, as
// Rails, Express's method-override and ASP.NET do: it reports the method it
// would act on and the override headers it saw.
func overrideUpstream(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, seen := r.Method, []string{}
		for _, h := range []string{"X-Http-Method-Override", "X-Method-Override", "X-Http-Method"} {
			if v := r.Header.Get(h); v != "" {
				method = v
				seen = append(seen, h)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": method, "override_headers": seen})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type upstreamSaw struct {
	Method          string   `json:"method"`
	OverrideHeaders []string `json:"override_headers"`
}

// gatewayNode starts the gateway options Caddyfile in front of an
// overrideUpstream and returns the node, the upstream's address and a
// read-only and a read-write token.
func gatewayNode(t *testing.T) (n *node, upstream, read, write string) {
	t.Helper()
	up := overrideUpstream(t)
	n = startNode(t, nodeOptions{Caddyfile: "e2e/testdata/gateway.Caddyfile", Env: []string{"OVERRIDE_UPSTREAM=" + up}})
	c := n.registerClient(map[string]any{"name": "Override", "scopes": []string{"read:invoices", "write:invoices"}})
	return n, up, ccToken(t, n, c, "read:invoices"), ccToken(t, n, c, "read:invoices", "write:invoices")
}

func gwDo(t *testing.T, method, url, token string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestMethodOverride (issue 9 item 6): a read token must not become a
// write through X-HTTP-Method-Override and its siblings.
func TestMethodOverride(t *testing.T) {
	n, upstream, read, write := gatewayNode(t)
	overrides := []string{"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"}

	// The control: the upstream does honour the headers.
	for _, h := range overrides {
		resp, body := gwDo(t, "GET", "http://"+upstream+"/api/v1/invoices", "", h, "DELETE")
		var saw upstreamSaw
		if json.Unmarshal(body, &saw) != nil || resp.StatusCode != 200 || saw.Method != "DELETE" {
			t.Fatalf("control: upstream does not honour %s: %d %s", h, resp.StatusCode, body)
		}
	}

	t.Run("deleted by default", func(t *testing.T) {
		for _, h := range overrides {
			resp, body := gwDo(t, "GET", n.URL+"/api/v1/invoices/7", read, h, "DELETE")
			var saw upstreamSaw
			if err := json.Unmarshal(body, &saw); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", h, resp.StatusCode, body)
			}
			if saw.Method != "GET" || len(saw.OverrideHeaders) != 0 {
				t.Errorf("%s: upstream acted as %s, saw %v: a read token wrote", h, saw.Method, saw.OverrideHeaders)
			}
		}
	})

	t.Run("checked", func(t *testing.T) {
		for _, h := range overrides {
			resp, body := gwDo(t, "GET", n.URL+"/api/v2/invoices/7", read, h, "DELETE")
			if resp.StatusCode != 403 || decodeError(t, body).Error != "insufficient_scope" ||
				!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("%s with a read token: %d %s %q", h, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
			}
			resp, body = gwDo(t, "GET", n.URL+"/api/v2/invoices/7", write, h, "DELETE")
			var saw upstreamSaw
			if json.Unmarshal(body, &saw) != nil || resp.StatusCode != 200 || saw.Method != "DELETE" {
				t.Errorf("%s with a write token: %d %s", h, resp.StatusCode, body)
			}
		}
		// Disagreeing overrides, and an override to a method no route names.
		if resp, body := gwDo(t, "POST", n.URL+"/api/v2/invoices", write, "X-HTTP-Method", "DELETE", "X-Method-Override", "GET"); resp.StatusCode != 400 || decodeError(t, body).Error != "invalid_request" {
			t.Errorf("disagreeing overrides: %d %s", resp.StatusCode, body)
		}
		if resp, body := gwDo(t, "GET", n.URL+"/api/v2/invoices", write, "X-HTTP-Method-Override", "PURGE"); resp.StatusCode != 403 || decodeError(t, body).Error != "access_denied" {
			t.Errorf("override to an unrouted method: %d %s", resp.StatusCode, body)
		}
	})
}

// TestRejectionBodies (issue 8 part 4): JSON by default even on a site with
// handle_errors; `rejections handle_errors` hands the rejection to the
// site's error routes. The RFC 6750 challenge is sent either way.
func TestRejectionBodies(t *testing.T) {
	n, _, read, _ := gatewayNode(t)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{"no token", "GET", "/invoices", "", 401, ""},
		{"bad token", "GET", "/invoices", "not-a-jwt", 401, "invalid_token"},
		{"no route", "GET", "/elsewhere", read, 403, "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Default: oauthgate's JSON body.
			resp, body := gwDo(t, tc.method, n.URL+"/api/v1"+tc.path, tc.token)
			e := decodeError(t, body)
			want := tc.code
			if want == "" {
				want = "invalid_request"
			}
			if resp.StatusCode != tc.status || e.Error != want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("json: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			checkChallenge(t, resp, tc.code)

			// handle_errors: the site's page, with the status and code.
			resp, body = gwDo(t, tc.method, n.URL+"/api/v3"+tc.path, tc.token)
			if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != strings.TrimSpace("site error page: "+itoa(tc.status)+" "+tc.code) {
				t.Errorf("handle_errors: %d %s", resp.StatusCode, body)
			}
			checkChallenge(t, resp, tc.code)
		})
	}
	// Allowed requests are not affected.
	if resp, body := gwDo(t, "GET", n.URL+"/api/v3/invoices", read); resp.StatusCode != 200 {
		t.Errorf("allowed: %d %s", resp.StatusCode, body)
	}
}

// checkChallenge wants one Bearer challenge carrying error code (none for
// a request without credentials). A request without credentials may also
// be offered the DPoP scheme (RFC 9449 §7.1: one challenge per scheme the
// resource accepts); a refused bearer token is answered in its own scheme.
func checkChallenge(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	var bearer []string
	for _, ch := range resp.Header.Values("WWW-Authenticate") {
		switch {
		case strings.HasPrefix(ch, "Bearer "):
			bearer = append(bearer, ch)
		case strings.HasPrefix(ch, "DPoP ") && code == "":
		default:
			t.Errorf("WWW-Authenticate %q: unexpected challenge %q", resp.Header.Values("WWW-Authenticate"), ch)
		}
	}
	if len(bearer) != 1 || !strings.HasPrefix(bearer[0], `Bearer realm="oauthgate"`) || (code != "") != strings.Contains(bearer[0], `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate %q, want one Bearer challenge with error %q", resp.Header.Values("WWW-Authenticate"), code)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
