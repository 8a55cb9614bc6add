package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gatewayCaddyfiles are the Caddyfiles whose gateway site listens on
// OAUTHGATE_HTTP.
var gatewayCaddyfiles = []string{
	"Caddyfile",
	"examples/cluster/Caddyfile",
	"examples/yionstack/Caddyfile",
	"examples/yuvo/Caddyfile",
	"examples/yappointment/Caddyfile",
	"examples/yoco/Caddyfile",
	"e2e/testdata/delegated.Caddyfile",
	"e2e/testdata/gateway.Caddyfile",
}

// TestListenWhereOAUTHGATE_HTTPSays: adapted with OAUTHGATE_HTTP set to a
// host and port, every Caddyfile's gateway server listens on exactly that
// address; with only a port, on every interface at it.
func TestListenWhereOAUTHGATE_HTTPSays(t *testing.T) {
	for _, file := range gatewayCaddyfiles {
		for _, tc := range []struct{ env, want string }{
			{"127.0.0.1:8640", "127.0.0.1:8640"},
			{":8640", ":8640"},
		} {
			cmd := exec.Command(caddyBin, "adapt", "--config", filepath.Join(repoRoot, file), "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "OAUTHGATE_HTTP="+tc.env, "OAUTHGATE_ISSUER=http://127.0.0.1:8640",
				"PLATFORM_SESSION_URL=http://127.0.0.1:9/session", "PLATFORM_SIGN_IN_URL=http://127.0.0.1:9/sign-in")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("adapting %s: %v", file, err)
			}
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Listen []string `json:"listen"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			found := false
			for name, srv := range cfg.Apps.HTTP.Servers {
				if !strings.Contains(strings.Join(srv.Listen, " "), "8640") {
					continue
				}
				found = true
				if !reflect.DeepEqual(srv.Listen, []string{tc.want}) {
					t.Errorf("%s with OAUTHGATE_HTTP=%s: server %s listens on %v, want [%s]", file, tc.env, name, srv.Listen, tc.want)
				}
			}
			if !found {
				t.Errorf("%s with OAUTHGATE_HTTP=%s: no server listens on port 8640", file, tc.env)
			}
		}
	}
}

// TestBindsLoopbackOnly: a node started with OAUTHGATE_HTTP=127.0.0.1:<port>
// answers there and accepts no connection on another address of this
// machine at that port: 127.0.0.2 (loopback, but not the address bound)
// and, when there is one, a non-loopback address.
func TestBindsLoopbackOnly(t *testing.T) {
	port := freePort(t)
	n := startNode(t, nodeOptions{Port: port, Env: []string{fmt.Sprintf("OAUTHGATE_HTTP=127.0.0.1:%d", port)}})
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second); err != nil {
		t.Fatalf("the bound address does not accept: %v", err)
	} else {
		c.Close()
	}
	others := []string{"127.0.0.2"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				others = append(others, ipn.IP.String())
				break
			}
		}
	}
	t.Logf("also tried: %v", others)
	for _, host := range others {
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("OAUTHGATE_HTTP=127.0.0.1:%d, yet %s accepts a connection\n%s", port, addr, n.Logs())
		}
	}
}
