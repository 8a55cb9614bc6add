package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clusterEnv starts a private PostgreSQL with one fresh database and
// returns the environment every node of a cluster on it shares.
func clusterEnv(t *testing.T) []string {
	t.Helper()
	pg := startPostgres(t)
	return []string{
		"OAUTHGATE_DSN=" + pg.CreateDB("oauthgate"),
		fmt.Sprintf("OAUTHGATE_ISSUER=http://localhost:%d", freePort(t)),
	}
}

// junkKidToken looks like one of our access tokens but names a kid no
// store holds (its signature is never checked: the kid is looked up first).
func junkKidToken() string {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := fmt.Sprintf(`{"alg":"ES256","typ":"at+jwt","kid":%q}`, rand.Text())
	return enc([]byte(hdr)) + "." + enc([]byte(`{"sub":"x"}`)) + "." + enc(make([]byte, 64))
}

// TestClusterRotationNeverRefused is issue 9 item 14: right after a key
// rotation on node A, node B must accept a token signed with the new key,
// at once, every time, also while junk kids flood B.
func TestClusterRotationNeverRefused(t *testing.T) {
	env := clusterEnv(t)
	nodes := startNodes(t,
		nodeOptions{Caddyfile: clusterCaddyfile, Env: env},
		nodeOptions{Caddyfile: clusterCaddyfile, Env: env},
	)
	a, b := nodes[0], nodes[1]
	c := a.registerClient(map[string]any{"name": "rotations", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})

	rotate := func(t *testing.T, flood bool) {
		var slowest time.Duration
		refused := 0
		for i := range 20 {
			var rot struct {
				Kid string `json:"kid"`
			}
			if st := a.adminJSON(http.MethodPost, "/oauthgate/keys/rotate", nil, &rot); st != http.StatusOK {
				t.Fatalf("rotation %d on A: %d", i, st)
			}
			tok := ccToken(t, a, c)
			if kid := tokenKid(t, tok); kid != rot.Kid {
				t.Fatalf("rotation %d: A signs with %q, rotated to %q", i, kid, rot.Kid)
			}
			t0 := time.Now()
			st := gateway(b, tok)
			slowest = max(slowest, time.Since(t0))
			if st != http.StatusOK {
				refused++
				t.Errorf("rotation %d (flood %v): B answered %d to a token of A's new key", i, flood, st)
			}
		}
		t.Logf("20 rotations on A (flood %v): B refused %d of the new keys' tokens, slowest answer %v", flood, refused, slowest.Round(time.Millisecond))
	}

	t.Run("quiet", func(t *testing.T) { rotate(t, false) })

	t.Run("junk kids flooding B", func(t *testing.T) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent, refused atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					st := gateway(b, junkKidToken())
					sent.Add(1)
					if st == http.StatusUnauthorized {
						refused.Add(1)
					}
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // the flood is on
		rotate(t, true)
		close(stop)
		wg.Wait()
		t.Logf("%d junk requests sent to B, %d refused with 401", sent.Load(), refused.Load())
		if sent.Load() == 0 || refused.Load() != sent.Load() {
			t.Errorf("junk kids: %d of %d refused with 401", refused.Load(), sent.Load())
		}
	})
}
