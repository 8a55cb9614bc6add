// Package e2e drives the real oauthgate binary, built from this repository,
// over real HTTP with real OAuth client libraries.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the binary TestMain builds from ./cmd/caddy.
var caddyBin string

// repoRoot is the module root, where the demo Caddyfile lives.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "oauthgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one running Caddy process.
type node struct {
	t        *testing.T
	cmd      *exec.Cmd
	URL      string // gateway base URL, also the issuer
	Admin    string // admin base URL
	DataDir  string // XDG_DATA_HOME of the process
	Env      []string
	logs     *syncBuffer
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// nodeOptions tune startNode.
type nodeOptions struct {
	// Caddyfile is relative to the repository root; default "Caddyfile".
	Caddyfile string
	// DataDir reuses a data directory (to test restarts); default a new one.
	DataDir string
	// Env adds environment variables.
	Env []string
	// Port fixes the gateway port (restarts keep the issuer); 0 picks one.
	Port int
}

// Ports handed out by freePort come from below the kernel's ephemeral range
// (32768–60999 by default): a port the kernel picked for a listener of ours
// is just as likely to be picked next as the local port of one of the many
// outgoing connections the tests make, and Caddy's listen then fails with
// "address already in use".
const (
	freePortLow  = 20000
	freePortHigh = 32000
)

var (
	freePortMu   sync.Mutex
	freePortUsed = map[int]bool{}
)

// freePort returns a port nobody listens on, on any address, that no other
// call in this test process has returned.
func freePort(t testing.TB) int {
	t.Helper()
	freePortMu.Lock()
	defer freePortMu.Unlock()
	for range 1000 {
		p := freePortLow + rand.IntN(freePortHigh-freePortLow)
		if freePortUsed[p] {
			continue
		}
		// Caddy binds the wildcard address: check that one.
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		l.Close()
		freePortUsed[p] = true
		return p
	}
	t.Fatal("no free port found")
	return 0
}

// startNode starts Caddy on the given Caddyfile with every address moved to
// a free port, and waits until the gateway answers.
func startNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	n := newNode(t, o)
	n.waitReady()
	return n
}

// startNodes starts several nodes at the same moment (e.g. to race their
// migrations on one fresh database), then waits until every one answers.
func startNodes(t *testing.T, opts ...nodeOptions) []*node {
	t.Helper()
	ns := make([]*node, len(opts))
	for i, o := range opts {
		ns[i] = newNode(t, o)
	}
	for _, n := range ns {
		n.waitReady()
	}
	return ns
}

// newNode launches the process without waiting for it.
func newNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	if o.Caddyfile == "" {
		o.Caddyfile = "Caddyfile"
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	port := o.Port
	if port == 0 {
		port = freePort(t)
	}
	adminPort := freePort(t)
	n := &node{
		t:       t,
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		Admin:   fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		DataDir: o.DataDir,
		logs:    &syncBuffer{},
		done:    make(chan struct{}),
	}
	n.Env = append(os.Environ(),
		"XDG_DATA_HOME="+o.DataDir,
		"XDG_CONFIG_HOME="+o.DataDir,
		fmt.Sprintf("OAUTHGATE_HTTP=:%d", port),
		"OAUTHGATE_ISSUER="+n.URL,
		fmt.Sprintf("OAUTHGATE_ADMIN=127.0.0.1:%d", adminPort),
		fmt.Sprintf("DEMO_ACCOUNTING=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("DEMO_CRM=127.0.0.1:%d", freePort(t)),
	)
	n.Env = append(n.Env, o.Env...)
	n.launch(filepath.Join(repoRoot, o.Caddyfile))
	t.Cleanup(n.Stop)
	return n
}

func (n *node) launch(caddyfile string) {
	t := n.t
	// Read here, not only by the child, so that go test's cache keys on the
	// Caddyfile's content as well.
	if _, err := os.ReadFile(caddyfile); err != nil {
		t.Fatalf("reading %s: %v", caddyfile, err)
	}
	n.cmd = exec.Command(caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	n.cmd.Env = n.Env
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.done)
	}()
}

// waitReady waits until what the tests use answers: the gateway (its
// metadata document) and the oauthgate admin API. The two are separate
// listeners and Caddy starts them at different moments, so one answering
// says nothing of the other.
func (n *node) waitReady() {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range []string{n.URL + "/.well-known/oauth-authorization-server", n.Admin + "/oauthgate/keys"} {
		for {
			select {
			case <-n.done:
				t.Fatalf("caddy exited early: %v\n%s", n.waitErr, n.logs.String())
			default:
			}
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("%s: %s", u, resp.Status)
			}
			if time.Now().After(deadline) {
				t.Fatalf("caddy did not become ready: %v\n%s", err, n.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Stop ends the process gracefully and fails the test if its log shows a
// panic.
func (n *node) Stop() {
	n.stopOnce.Do(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if strings.Contains(n.logs.String(), "panic:") {
			n.t.Errorf("caddy panicked:\n%s", n.logs.String())
		}
	})
}

// Kill ends the process with SIGKILL, as a crash would.
func (n *node) Kill() {
	n.stopOnce.Do(func() {
		_ = n.cmd.Process.Kill()
		<-n.done
	})
}

// Logs returns everything the process printed so far.
func (n *node) Logs() string { return n.logs.String() }

// adminJSON calls the admin API and decodes the answer into out (if not nil).
func (n *node) adminJSON(method, path string, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.Admin+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// registeredClient is the admin API's answer to a registration.
type registeredClient struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Name         string   `json:"name"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	Businesses   []string `json:"businesses"`
	RedirectURIs []string `json:"redirect_uris"`
}

// registerClient registers a client through the admin API.
func (n *node) registerClient(spec map[string]any) registeredClient {
	n.t.Helper()
	var c registeredClient
	if code := n.adminJSON(http.MethodPost, "/oauthgate/clients", spec, &c); code != http.StatusCreated {
		n.t.Fatalf("registering client: status %d\n%s", code, n.Logs())
	}
	return c
}

// syncBuffer is a bytes.Buffer safe for the process's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}
