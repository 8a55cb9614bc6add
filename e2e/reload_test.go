package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// acceptCounter is a TCP listener that counts the connections made to it
// and closes each at once: the "database" of a DSN that must not be dialled.
type acceptCounter struct {
	ln    net.Listener
	count atomic.Int64
	done  chan struct{}
}

func newAcceptCounter(t *testing.T) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.count.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-a.done })
	return a
}

// TestValidateTouchesNothing: `caddy validate` and `caddy adapt --validate`
// provision the oauthgate app without starting it, so a configuration whose
// PostgreSQL DSN points at a port that must not be dialled is reported
// valid, and the port sees no connection; with the default SQLite store,
// nothing is written to Caddy's data directory.
func TestValidateTouchesNothing(t *testing.T) {
	db := newAcceptCounter(t)
	dsn := fmt.Sprintf("postgres://postgres@%s/oauthgate?sslmode=disable&connect_timeout=2", db.ln.Addr())
	// A port nothing listens on, for the second case.
	closedPort := freePort(t)
	dead := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/oauthgate?sslmode=disable&connect_timeout=2", closedPort)

	run := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(caddyBin, args...)
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// Dialling would take connect_timeout (2s) at least; provisioning
		// alone is far quicker even on a loaded machine.
		t.Logf("caddy %s: %v", args[0], time.Since(start))
		return string(out)
	}
	cluster := filepath.Join(repoRoot, clusterCaddyfile)
	for _, tc := range []struct{ name, dsn string }{{"listening port", dsn}, {"closed port", dead}} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			env := []string{"OAUTHGATE_DSN=" + tc.dsn, "OAUTHGATE_ISSUER=https://api.example.com",
				"XDG_DATA_HOME=" + data, "XDG_CONFIG_HOME=" + data}
			if out := run(t, env, "validate", "--config", cluster, "--adapter", "caddyfile"); !strings.Contains(out, "Valid configuration") {
				t.Errorf("validate did not report a valid configuration:\n%s", out)
			}
			if out := run(t, env, "adapt", "--config", cluster, "--adapter", "caddyfile", "--validate"); !strings.Contains(out, `"oauthgate"`) {
				t.Errorf("adapt --validate printed no oauthgate app:\n%s", out)
			}
			assertNoFiles(t, data)
		})
	}
	if n := db.count.Load(); n != 0 {
		t.Errorf("validation connected %d times to the store's address", n)
	}

	t.Run("sqlite default path", func(t *testing.T) {
		data := t.TempDir()
		env := []string{"XDG_DATA_HOME=" + data, "XDG_CONFIG_HOME=" + data}
		if out := run(t, env, "validate", "--config", filepath.Join(repoRoot, "Caddyfile"), "--adapter", "caddyfile"); !strings.Contains(out, "Valid configuration") {
			t.Errorf("validate did not report a valid configuration:\n%s", out)
		}
		assertNoFiles(t, data)
	})

	// The control: the same configuration, run, does dial the store.
	t.Run("control: run dials", func(t *testing.T) {
		data := t.TempDir()
		cmd := exec.Command(caddyBin, "run", "--config", cluster, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "OAUTHGATE_DSN="+dsn, "OAUTHGATE_ISSUER=https://api.example.com",
			"XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+data,
			fmt.Sprintf("OAUTHGATE_HTTP=:%d", freePort(t)), fmt.Sprintf("OAUTHGATE_ADMIN=127.0.0.1:%d", freePort(t)),
			fmt.Sprintf("DEMO_ACCOUNTING=127.0.0.1:%d", freePort(t)), fmt.Sprintf("DEMO_CRM=127.0.0.1:%d", freePort(t)))
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("caddy run against a store that hangs up started:\n%s", out)
		}
		if db.count.Load() == 0 {
			t.Errorf("caddy run never dialled the store; the validation check above proves nothing\n%s", out)
		}
	})
}

// assertNoFiles fails if anything but directories was created under dir.
func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("validation wrote %s", p)
		}
		return nil
	})
}

// TestReloadUnderLoad: while clients keep calling a protected route, the
// token endpoint and the admin API, the configuration is reloaded through
// the admin API's /load several times. No request may fail: no 5xx, no
// refusal of a valid token, no connection error. A reload starts the new
// configuration's app before the old one's servers finish, and both share
// the store.
func TestReloadUnderLoad(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Reload", "scopes": []string{"read:invoices"}, "businesses": []string{"biz_r"}})
	tok := ccToken(t, n, c)
	caddyfile, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		counts   = map[string]*atomic.Int64{"protected": {}, "token": {}, "admin": {}}
	)
	fail := func(kind, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, kind+": "+msg)
		} else if len(failures) == 20 {
			failures = append(failures, "…")
		}
	}
	// check runs one request and records its outcome.
	check := func(kind string, client *http.Client, newReq func() *http.Request, want int) {
		resp, err := client.Do(newReq())
		if err != nil {
			fail(kind, err.Error())
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			fail(kind, fmt.Sprintf("%d %s", resp.StatusCode, body))
			return
		}
		counts[kind].Add(1)
	}
	loop := func(kind string, client *http.Client, newReq func() *http.Request, want int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				check(kind, client, newReq, want)
			}
		}()
	}
	// Protected calls reuse their connections, as an API client does: the
	// old configuration's server answers some of them after the reload.
	for range 3 {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
		loop("protected", client, func() *http.Request {
			req, _ := http.NewRequest("GET", n.URL+"/api/v1/accounting/invoices", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Business-Id", "biz_r")
			return req
		}, http.StatusOK)
	}
	// Token and admin requests reuse connections too. A reload replaces
	// the listening sockets (and, on every load, the admin endpoint), and a
	// connection opened but not yet accepted when an old socket closes is
	// reset by the kernel before any server reads it; that is Caddy's,
	// whatever the plugin does. Clients on kept-alive connections open new
	// ones only after the old server has closed their idle connection, and
	// the transport resends a request such a connection lost unanswered:
	// for a POST only when it is marked idempotent, as a client-credentials
	// request is (it spends nothing).
	tokenClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	loop("token", tokenClient, func() *http.Request {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
		req, _ := http.NewRequest("POST", n.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotency-Key", "client-credentials")
		return req
	}, http.StatusOK)
	adminClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	loop("admin", adminClient, func() *http.Request {
		req, _ := http.NewRequest("GET", n.Admin+"/oauthgate/clients/"+c.ClientID, nil)
		return req
	}, http.StatusOK)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

	const reloads = 5
	time.Sleep(300 * time.Millisecond)
	for i := range reloads {
		before := counts["protected"].Load() + counts["token"].Load()
		req, _ := http.NewRequest("POST", n.Admin+"/load", strings.NewReader(string(caddyfile)))
		req.Header.Set("Content-Type", "text/caddyfile")
		// Caddy skips a load of the configuration it runs unless told.
		req.Header.Set("Cache-Control", "must-revalidate")
		resp, err := fresh.Do(req)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reload %d: %d %s\n%s", i, resp.StatusCode, body, n.Logs())
		}
		// Let traffic flow on the new configuration before the next.
		deadline := time.Now().Add(10 * time.Second)
		for counts["protected"].Load()+counts["token"].Load() < before+50 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	if got := strings.Count(n.Logs(), "load complete"); got < reloads {
		t.Errorf("the log shows %d completed loads, want %d: the reloads did not happen", got, reloads)
	}
	t.Logf("served during %d reloads: %d protected, %d token, %d admin requests", reloads,
		counts["protected"].Load(), counts["token"].Load(), counts["admin"].Load())
	for kind, n := range counts {
		if n.Load() < 20 {
			t.Errorf("only %d %s requests were served: the load did not run", n.Load(), kind)
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d+ requests failed across the reloads:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	// The token issued before the reloads still works: same store, same keys.
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "biz_r"); r.StatusCode != http.StatusOK {
		t.Errorf("token from before the reloads: %d", r.StatusCode)
	}
	if strings.Contains(n.Logs(), "panic") {
		t.Errorf("panic in the log:\n%s", n.Logs())
	}
}

// TestReadyFromFirstAnswer: from the moment the admin endpoint and the
// gateway accept connections, they answer with the oauthgate app, never a
// 503 because it has not started yet. Caddy opens the admin endpoint before
// it starts any app and starts apps in no fixed order, so a request may
// come before the app has started; it waits for it. Polled as fast as the
// process accepts, from launch.
func TestReadyFromFirstAnswer(t *testing.T) {
	for round := range 3 {
		n := newNode(t, nodeOptions{})
		var wg sync.WaitGroup
		for _, u := range []string{n.Admin + "/oauthgate/keys", n.URL + "/.well-known/openid-configuration"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
				deadline := time.Now().Add(60 * time.Second)
				for time.Now().Before(deadline) {
					resp, err := client.Get(u)
					if err != nil {
						// Not listening yet.
						time.Sleep(2 * time.Millisecond)
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("round %d: first answer of %s: %d %s", round, u, resp.StatusCode, body)
					}
					return
				}
				t.Errorf("round %d: %s never answered\n%s", round, u, n.Logs())
			}()
		}
		wg.Wait()
		n.Stop()
	}
}
