package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/dpop/dpoptest"
)

// The dpop phase: plain vs protected with a bearer token vs protected with
// a DPoP-bound token (RFC 9449), at saturation, alternating within each
// round as the gateway phase does. Every DPoP request carries a new ES256
// proof, signed by the bench before the run (a proof is valid for 60 s
// and used once), so the gateway pays one signature check per request.

const (
	scDPoPPlain  = "plain"
	scDPoPBearer = "protected, bearer token"
	scDPoP       = "protected, DPoP"
)

var dpopScenarios = []string{scDPoPPlain, scDPoPBearer, scDPoP}

// dpopRound is one round of the dpop phase.
type dpopRound struct {
	Order     []string             `json:"order"`
	Load      string               `json:"loadavg"`
	Saturated map[string]runResult `json:"saturated"`
	CPU       map[string]float64   `json:"cpu_us_per_request"`
	Alloc     map[string]float64   `json:"alloc_bytes_per_request"`
}

func dpopPhase(c *config, n *node, cl client, res *results, hardStop time.Time) error {
	key, err := dpoptest.NewKey("ES256")
	if err != nil {
		return err
	}
	bound, err := mintBound(n, cl, key)
	if err != nil {
		return err
	}
	bearerTok, err := mintBound(n, cl, nil)
	if err != nil {
		return err
	}
	const path = "/api/v1/accounting/invoices"
	request := func(host, scheme, token, proof string, buf []byte) []byte {
		buf = append(buf, "GET "+path+" HTTP/1.1\r\nHost: "...)
		buf = append(buf, host...)
		buf = append(buf, "\r\nAuthorization: "+scheme+" "...)
		buf = append(buf, token...)
		if proof != "" {
			buf = append(buf, "\r\nDPoP: "...)
			buf = append(buf, proof...)
		}
		return append(buf, "\r\nX-Business-Id: "+benchBusiness+"\r\nAccept: application/json\r\nUser-Agent: oauthgate-bench\r\n\r\n"...)
	}
	plainReq, bearerReq := request(n.plain, "Bearer", bearerTok, "", nil), request(n.protected, "Bearer", bearerTok, "", nil)
	check := func(_ uint64, body []byte) bool { return len(body) == len(upstreamBody) }
	htu := "http://" + n.protected + path
	// sign makes k proofs, each for one request.
	sign := func(k int) ([][]byte, error) {
		out := make([][]byte, k)
		for i := range out {
			p, err := key.Sign(dpoptest.Proof{Method: "GET", URL: htu, AccessToken: bound})
			if err != nil {
				return nil, err
			}
			out[i] = request(n.protected, "DPoP", bound, p, nil)
		}
		return out, nil
	}
	// The first batch also warms up; later batches are sized from the
	// rate the previous round reached (a run ends at its duration or when
	// its proofs run out, whichever comes first).
	want := 4000
	if warm, err := sign(want / 2); err != nil {
		return err
	} else {
		rr := run(loadSpec{addr: n.protected, conns: c.Conns, dur: c.Duration / 5, max: int64(len(warm)), status: 200,
			gen: func(seq uint64, buf []byte) []byte { return append(buf, warm[seq]...) }, check: check})
		if rr.Bad+rr.Errors > 0 {
			return fmt.Errorf("DPoP requests refused in the warm-up: %+v", rr)
		}
		want = max(want, int(rr.RPS*c.Duration.Seconds()*1.3))
	}
	for r := range c.Rounds {
		if time.Now().After(hardStop) {
			return errors.New("out of time (-max-time)")
		}
		order := slices.Clone(dpopScenarios)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		rd := dpopRound{Order: order, Load: loadavg(), Saturated: map[string]runResult{}, CPU: map[string]float64{}, Alloc: map[string]float64{}}
		for _, sc := range order {
			spec := loadSpec{addr: n.protected, conns: c.Conns, dur: c.Duration, status: 200, check: check}
			switch sc {
			case scDPoPPlain:
				spec.addr = n.plain
				spec.gen = func(_ uint64, buf []byte) []byte { return append(buf, plainReq...) }
			case scDPoPBearer:
				spec.gen = func(_ uint64, buf []byte) []byte { return append(buf, bearerReq...) }
			case scDPoP:
				logf("round %d: signing %d DPoP proofs", r+1, want)
				reqs, err := sign(want)
				if err != nil {
					return err
				}
				spec.max = int64(len(reqs))
				spec.gen = func(seq uint64, buf []byte) []byte { return append(buf, reqs[seq]...) }
			}
			alloc0 := allocBytes(n)
			cpu0, cpuErr := n.cpu()
			rr := run(spec)
			cpu1, cpuErr1 := n.cpu()
			alloc1 := allocBytes(n)
			if cpuErr == nil && cpuErr1 == nil && rr.Requests > 0 {
				rd.CPU[sc] = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(rr.Requests)
			}
			if alloc0 >= 0 && alloc1 >= 0 && rr.Requests > 0 {
				rd.Alloc[sc] = (alloc1 - alloc0) / float64(rr.Requests)
			}
			if sc == scDPoP {
				want = max(want, int(rr.RPS*c.Duration.Seconds()*1.3))
			}
			rd.Saturated[sc] = rr
			logf("round %d %-24s saturated: %7.0f req/s p50 %.3fms p99 %.3fms, gateway CPU %.1fµs/req, %.0f B/req allocated (errors %d, bad %d %s)",
				r+1, sc, rr.RPS, rr.P50, rr.P99, rd.CPU[sc], rd.Alloc[sc], rr.Errors, rr.Bad, rr.Statuses)
		}
		res.DPoP = append(res.DPoP, rd)
	}
	return nil
}

func allocBytes(n *node) float64 {
	m, err := n.metrics("go_memstats_alloc_bytes_total")
	if err != nil {
		return -1
	}
	return m["go_memstats_alloc_bytes_total"]
}

// mintBound gets a client-credentials token, bound to key when it is set
// (a DPoP proof on the token request).
func mintBound(n *node, cl client, key *dpoptest.Key) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {benchScope}}
	req, err := http.NewRequest("POST", n.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(cl))
	want := "Bearer"
	if key != nil {
		p, err := key.Sign(dpoptest.Proof{Method: "POST", URL: n.issuer + "/oauth/token"})
		if err != nil {
			return "", err
		}
		req.Header.Set("DPoP", p)
		want = "DPoP"
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || resp.StatusCode != 200 || t.TokenType != want {
		return "", fmt.Errorf("minting a %s token: %d %s %v", want, resp.StatusCode, t.TokenType, err)
	}
	return t.AccessToken, nil
}

// writeDPoPReport writes the dpop phase's table.
func writeDPoPReport(w func(string, ...any), rs []dpopRound) {
	med := func(f func(dpopRound) float64) float64 {
		xs := make([]float64, 0, len(rs))
		for _, r := range rs {
			if v := f(r); v > 0 {
				xs = append(xs, v)
			}
		}
		return median(xs)
	}
	rpsOf := func(sc string) float64 { return med(func(r dpopRound) float64 { return r.Saturated[sc].RPS }) }
	cpuOf := func(sc string) float64 { return med(func(r dpopRound) float64 { return r.CPU[sc] }) }
	allocOf := func(sc string) float64 { return med(func(r dpopRound) float64 { return r.Alloc[sc] }) }
	ratio := func(sc string) (float64, []float64) {
		var xs []float64
		for _, r := range rs {
			if p := r.Saturated[scDPoPPlain].RPS; p > 0 {
				xs = append(xs, r.Saturated[sc].RPS/p)
			}
		}
		return median(xs), xs
	}
	rb, rbs := ratio(scDPoPBearer)
	rd, rds := ratio(scDPoP)
	w("### Gateway: DPoP-bound tokens\n\n")
	w("Medians over the %d rounds of the `dpop` phase: plain, a bearer token and a DPoP-bound token (a new ES256 proof on every request, signed by the bench beforehand) on one route, one scenario at a time. Load average at the start of each round: %s.\n\n",
		len(rs), strings.Join(func() []string {
			var l []string
			for _, r := range rs {
				l = append(l, r.Load)
			}
			return l
		}(), " | "))
	w("| | plain | protected, bearer token | protected, DPoP |\n|---|---:|---:|---:|\n")
	w("| throughput at saturation, req/s | %s | %s | %s |\n", thousands(rpsOf(scDPoPPlain)), thousands(rpsOf(scDPoPBearer)), thousands(rpsOf(scDPoP)))
	w("| ratio to plain (median of per-round ratios) | 1 | %.3f | **%.3f** |\n", rb, rd)
	w("| per-round ratios | | %s | %s |\n", floats(rbs, "%.3f"), floats(rds, "%.3f"))
	w("| gateway CPU per request, µs | %.1f | %.1f | %.1f |\n", cpuOf(scDPoPPlain), cpuOf(scDPoPBearer), cpuOf(scDPoP))
	if p, d := cpuOf(scDPoPPlain), cpuOf(scDPoP); p > 0 && d > 0 {
		w("| plain ÷ protected CPU (the ratio a CPU-bound gateway would show) | 1 | %.3f | **%.3f** |\n", p/cpuOf(scDPoPBearer), p/d)
	}
	w("| gateway heap allocated per request, bytes | %s | %s | %s |\n\n", thousands(allocOf(scDPoPPlain)), thousands(allocOf(scDPoPBearer)), thousands(allocOf(scDPoP)))
}
