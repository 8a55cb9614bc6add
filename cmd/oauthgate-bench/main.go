// Command oauthgate-bench measures what oauth_protect costs in front of a
// reverse proxy, how fast the authorization server issues and introspects
// tokens, and how much memory the gateway needs as tokens pile up. It
// writes the results into docs/benchmarks.md (between markers, keeping the
// hand-written text around them) with SVG plots beside it.
//
// Run from the module root:
//
//	go run ./cmd/oauthgate-bench          # full run, about 10 minutes
//	go run ./cmd/oauthgate-bench -quick   # a minute, for development
//
// It builds ./cmd/caddy, starts a tiny upstream and Caddy on
// examples/bench/Caddyfile (every address on 127.0.0.1, free ports),
// registers clients through the admin API, mints tokens through the token
// endpoint, then runs the phases below. Plain and protected runs alternate
// within every round, in reversed order every other round, so drift and
// other load on the machine fall on both alike; medians over rounds are
// reported.
//
//  1. gateway: plain vs protected with one token and with -tokens distinct
//     tokens in rotation, at saturation (closed loop) and at a fixed rate
//     (open loop, latency);
//  2. dpop: plain vs a bearer token vs a DPoP-bound token with a new
//     proof on every request, at saturation;
//  3. issuance: client_credentials with HTTP Basic, secret checked each time;
//  4. introspection of the minted tokens by their clients;
//  5. memory: a fresh gateway sees -mem-tokens distinct valid tokens,
//     signed by the bench with the node's own key read from its store;
//     VmRSS is sampled as they arrive.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

type config struct {
	Rounds      int           `json:"rounds"`
	Duration    time.Duration `json:"duration"`
	LatDuration time.Duration `json:"latency_duration"`
	AuthDur     time.Duration `json:"auth_duration"`
	Conns       int           `json:"conns"`
	LatConns    int           `json:"latency_conns"`
	Rate        float64       `json:"rate"`
	Tokens      int           `json:"tokens"`
	MemTokens   int           `json:"mem_tokens"`
	Clients     int           `json:"clients"`
	Quick       bool          `json:"quick"`
	// AccessFormat is the gateway's access_token_format: "jwt" or "opaque".
	AccessFormat string `json:"access_token_format,omitempty"`

	// GoMemLimit, if set, is GOMEMLIMIT for the memory run's gateway.
	GoMemLimit string `json:"gomemlimit,omitempty"`

	out, svgDir, caddyBin, profileDir, phases, root, reportFrom string
	maxTime                                                     time.Duration
	keep                                                        bool
}

func main() {
	var c config
	flag.StringVar(&c.AccessFormat, "access-token-format", "jwt", "the gateway's access_token_format: jwt, or opaque (not with the memory phase, whose tokens the bench signs; the report goes to a temp dir unless -out is given)")
	flag.BoolVar(&c.Quick, "quick", false, "short run for development: 2 rounds of 2s, 5,000 tokens, 50,000 for memory; writes to a temp dir unless -out is given")
	flag.IntVar(&c.Rounds, "rounds", 5, "A/B rounds")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "length of each saturation run")
	flag.DurationVar(&c.LatDuration, "latency-duration", 10*time.Second, "length of each round's fixed-rate latency run (the three scenarios interleaved)")
	flag.DurationVar(&c.AuthDur, "auth-duration", 5*time.Second, "length of each issuance and introspection run")
	flag.IntVar(&c.Conns, "conns", 16, "connections for saturation runs")
	flag.IntVar(&c.LatConns, "latency-conns", 12, "workers of the fixed-rate runs (each with a connection to each site)")
	flag.Float64Var(&c.Rate, "rate", 1000, "requests per second to each scenario in the fixed-rate runs")
	flag.IntVar(&c.Tokens, "tokens", 100_000, "distinct tokens in rotation (minted through the token endpoint)")
	flag.IntVar(&c.MemTokens, "mem-tokens", 1_000_000, "distinct tokens the memory run presents")
	flag.IntVar(&c.Clients, "clients", 4, "registered clients the tokens are spread over")
	flag.StringVar(&c.out, "out", "docs/benchmarks.md", "report to update (between the bench markers)")
	flag.StringVar(&c.svgDir, "svg-dir", "docs", "where the plots go")
	flag.StringVar(&c.caddyBin, "caddy", "", "use this caddy binary instead of building ./cmd/caddy")
	flag.StringVar(&c.profileDir, "profile", "", "save CPU profiles of the gateway (saturated runs of round 1, issuance, introspection) here")
	flag.StringVar(&c.phases, "phases", "gateway,dpop,issue,introspect,memory", "phases to run")
	flag.StringVar(&c.GoMemLimit, "gomemlimit", "", "GOMEMLIMIT for the gateway of the memory run, e.g. 400MiB (default: none, as Caddy runs by default)")
	flag.DurationVar(&c.maxTime, "max-time", 30*time.Minute, "abort if the whole run takes longer")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (binary, data dir, logs)")
	flag.StringVar(&c.reportFrom, "report-from", "", "measure nothing: rewrite the report from this results file (e.g. docs/benchmarks.json)")
	flag.Parse()
	if c.reportFrom != "" {
		if err := rewriteReport(&c); err != nil {
			fmt.Fprintln(os.Stderr, "oauthgate-bench:", err)
			os.Exit(1)
		}
		return
	}
	if c.Quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("rounds", func() { c.Rounds = 2 })
		def("duration", func() { c.Duration = 2 * time.Second })
		def("latency-duration", func() { c.LatDuration = 2 * time.Second })
		def("auth-duration", func() { c.AuthDur = 2 * time.Second })
		def("tokens", func() { c.Tokens = 5000 })
		def("mem-tokens", func() { c.MemTokens = 50_000 })
		def("out", func() { c.out = "" })
	}
	if c.AccessFormat != "jwt" {
		if c.AccessFormat != "opaque" {
			fmt.Fprintln(os.Stderr, "oauthgate-bench: -access-token-format: want jwt or opaque")
			os.Exit(2)
		}
		if strings.Contains(c.phases, "memory") {
			fmt.Fprintln(os.Stderr, "oauthgate-bench: -access-token-format opaque: leave out the memory phase (-phases gateway,issue,introspect): its tokens are signed JWTs")
			os.Exit(2)
		}
		// The report between the markers is the JWT run's.
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "out" })
		if !set {
			c.out = ""
		}
	}
	if err := benchmark(&c); err != nil {
		fmt.Fprintln(os.Stderr, "oauthgate-bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// moduleRoot finds the directory of this module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the oauthgate module")
	}
	b, err := os.ReadFile(mod)
	if err != nil || !strings.Contains(string(b), "module github.com/oauthgate/oauthgate\n") {
		return "", errors.New("run from inside the oauthgate module")
	}
	return filepath.Dir(mod), nil
}

// scenario names of the gateway phase.
const (
	scPlain     = "plain"
	scProtected = "protected, 1 token"
	scRotation  = "protected, N tokens"
)

var scenarios = []string{scPlain, scProtected, scRotation}

// round is one A/B round of the gateway phase.
type round struct {
	Order     []string             `json:"order"`
	Load      string               `json:"loadavg"`
	Saturated map[string]runResult `json:"saturated"`
	Paced     map[string]runResult `json:"paced"`
	// Misses is the cache misses during the protected runs of the round.
	Misses map[string]float64 `json:"cache_misses"`
	// CPU is the gateway process's CPU time per request in the saturated
	// runs, in microseconds: what each request costs the gateway, however
	// much of the machine it got.
	CPU map[string]float64 `json:"cpu_us_per_request"`
	// Alloc is what the gateway allocated per request in the saturated
	// runs (go_memstats_alloc_bytes_total), in bytes: garbage the GC must
	// collect, at a cost that grows with the live heap (the token cache).
	Alloc map[string]float64 `json:"alloc_bytes_per_request"`
}

// memSample is the gateway's memory after Tokens distinct tokens.
type memSample struct {
	Tokens    int64   `json:"tokens"`
	Seconds   float64 `json:"seconds"`
	RSS       int64   `json:"rss"`
	HWM       int64   `json:"hwm"`
	HeapInuse int64   `json:"heap_inuse"`
}

type results struct {
	Config     config      `json:"config"`
	Machine    machine     `json:"machine"`
	Command    string      `json:"command"`
	Started    time.Time   `json:"started"`
	Finished   time.Time   `json:"finished"`
	LoadBefore string      `json:"loadavg_before"`
	LoadAfter  string      `json:"loadavg_after"`
	Mint       runResult   `json:"mint"`      // minting the rotation tokens
	ColdPass   runResult   `json:"cold_pass"` // first sight of each of them
	Rounds     []round     `json:"rounds"`
	Issue      []runResult `json:"issue"`
	Introspect []runResult `json:"introspect"`
	Memory     []memSample `json:"memory"`
	MemoryRun  runResult   `json:"memory_run"`
	MemMisses  float64     `json:"memory_cache_misses"`
	// LiveHeap is the gateway's heap right after a forced GC, at the start
	// and at the end of the memory run.
	LiveHeapStart int64 `json:"live_heap_start"`
	// CacheSize is cache_size of the bench Caddyfile, in bytes.
	CacheSize   int64  `json:"cache_size"`
	LiveHeapEnd int64  `json:"live_heap_end"`
	MemError    string `json:"memory_error,omitempty"`
	// DPoP is the dpop phase (dpop.go).
	DPoP []dpopRound `json:"dpop,omitempty"`
}

func benchmark(c *config) error {
	start := time.Now()
	hardStop := start.Add(c.maxTime)
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	c.root = root
	if err := os.Chdir(root); err != nil {
		return err
	}
	phase := map[string]bool{}
	for _, p := range strings.Split(c.phases, ",") {
		phase[strings.TrimSpace(p)] = true
	}
	tmp, err := os.MkdirTemp("", "oauthgate-bench-")
	if err != nil {
		return err
	}
	if c.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if c.out == "" {
		c.out = filepath.Join(tmp, "benchmarks.md")
		c.svgDir = tmp
	}

	res := &results{Config: *c, Machine: describeMachine(), Command: commandLine(), Started: start, LoadBefore: loadavg()}
	logf("machine: %d CPUs, %s, %s; load average %s", res.Machine.CPUs, res.Machine.CPU, res.Machine.Go, res.LoadBefore)
	logf("access tokens: %s", c.AccessFormat)

	bin := c.caddyBin
	if bin == "" {
		logf("building ./cmd/caddy")
		if bin, err = buildCaddy(root, tmp); err != nil {
			return err
		}
	}
	upstream, stopUpstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer stopUpstream()

	caddyfile := filepath.Join(root, "examples", "bench", "Caddyfile")
	if res.CacheSize, err = cacheSize(caddyfile); err != nil {
		return err
	}
	dataDir := filepath.Join(tmp, "data")
	p, err := pickPorts()
	if err != nil {
		return err
	}
	n, err := startNode(bin, caddyfile, dataDir, upstream, p, "BENCH_ACCESS_TOKEN_FORMAT="+c.AccessFormat)
	if err != nil {
		return err
	}
	defer func() { n.stop() }()
	logf("caddy up: plain %s, protected %s, admin %s, upstream %s", n.plain, n.protected, n.admin, upstream)

	clients := make([]client, c.Clients)
	for i := range clients {
		err := n.adminJSON("POST", "/oauthgate/clients", map[string]any{
			"name": fmt.Sprintf("Bench client %d", i), "grant_types": []string{"client_credentials"},
			"scopes": strings.Fields(benchScope), "businesses": []string{benchBusiness},
		}, &clients[i])
		if err != nil {
			return fmt.Errorf("registering client: %w", err)
		}
	}

	needTokens := phase["gateway"] || phase["introspect"]
	var byClient [][]string
	var rotation []string
	if needTokens {
		logf("minting %d tokens through the token endpoint", c.Tokens)
		byClient, res.Mint, err = mintViaEndpoint(n.protected, clients, c.Tokens, c.Conns, 10*time.Minute)
		if err != nil {
			return err
		}
		logf("  %.0f tokens/s", res.Mint.RPS)
		// Interleave the clients' tokens so a rotation visits them all.
		for i := 0; len(rotation) < c.Tokens; i++ {
			for _, l := range byClient {
				if i < len(l) {
					rotation = append(rotation, l[i])
				}
			}
		}
	}

	if phase["gateway"] {
		if err := gatewayPhase(c, n, rotation, res, hardStop); err != nil {
			return err
		}
	}
	if phase["dpop"] {
		logf("dpop: %d rounds of plain, bearer and DPoP-bound at saturation", c.Rounds)
		if err := dpopPhase(c, n, clients[0], res, hardStop); err != nil {
			return err
		}
	}
	if phase["issue"] {
		logf("issuance: %d rounds of %v", c.Rounds, c.AuthDur)
		req := make([][]byte, len(clients))
		for i, cl := range clients {
			req[i] = tokenRequest(n.protected, cl)
		}
		if c.profileDir != "" {
			go n.profile(min(c.AuthDur, 5*time.Second), filepath.Join(c.profileDir, "issue.pprof"))
		}
		for r := range c.Rounds {
			if time.Now().After(hardStop) {
				return errors.New("out of time (-max-time)")
			}
			rr := run(loadSpec{addr: n.protected, conns: c.Conns, dur: c.AuthDur, status: 200,
				gen:   func(seq uint64, buf []byte) []byte { return append(buf, req[seq%uint64(len(req))]...) },
				check: func(_ uint64, body []byte) bool { return strings.Contains(string(body), `"access_token":"`) },
			})
			logf("  round %d: %.0f tokens/s, p50 %.2fms p99 %.2fms (errors %d, bad %d %s)", r+1, rr.RPS, rr.P50, rr.P99, rr.Errors, rr.Bad, rr.Statuses)
			res.Issue = append(res.Issue, rr)
		}
	}
	if phase["introspect"] {
		logf("introspection: %d rounds of %v", c.Rounds, c.AuthDur)
		auth := make([]string, len(clients))
		for i, cl := range clients {
			auth[i] = basicAuth(cl)
		}
		gen := func(seq uint64, buf []byte) []byte {
			i := seq % uint64(len(clients))
			l := byClient[i]
			tok := l[(seq/uint64(len(clients)))%uint64(len(l))]
			buf = append(buf, "POST /oauth/introspect HTTP/1.1\r\nHost: "...)
			buf = append(buf, n.protected...)
			buf = append(buf, "\r\nAuthorization: "...)
			buf = append(buf, auth[i]...)
			buf = append(buf, "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
			buf = fmt.Appendf(buf, "%d", len("token=")+len(tok))
			buf = append(buf, "\r\nUser-Agent: oauthgate-bench\r\n\r\ntoken="...)
			return append(buf, tok...)
		}
		if c.profileDir != "" {
			go n.profile(min(c.AuthDur, 5*time.Second), filepath.Join(c.profileDir, "introspect.pprof"))
		}
		for r := range c.Rounds {
			if time.Now().After(hardStop) {
				return errors.New("out of time (-max-time)")
			}
			rr := run(loadSpec{addr: n.protected, conns: c.Conns, dur: c.AuthDur, status: 200, gen: gen,
				check: func(_ uint64, body []byte) bool { return strings.Contains(string(body), `"active":true`) },
			})
			logf("  round %d: %.0f introspections/s, p50 %.2fms p99 %.2fms (errors %d, bad %d %s)", r+1, rr.RPS, rr.P50, rr.P99, rr.Errors, rr.Bad, rr.Statuses)
			res.Introspect = append(res.Introspect, rr)
		}
	}
	if phase["memory"] {
		n.stop()
		byClient, rotation = nil, nil
		runtime.GC()
		if p, err = pickPorts(); err != nil {
			return err
		}
		// A fresh process on the same store (same key, same clients), so
		// the curve starts from an empty cache.
		var env []string
		if c.GoMemLimit != "" {
			env = append(env, "GOMEMLIMIT="+c.GoMemLimit)
		}
		if n, err = startNode(bin, caddyfile, dataDir, upstream, p, env...); err != nil {
			return err
		}
		if err := memoryPhase(c, n, clients[0], res, hardStop); err != nil {
			// Reported rather than fatal: the other phases' numbers stand.
			res.MemError = err.Error()
			logf("memory phase: %v", err)
		}
	}
	res.Finished = time.Now()
	res.LoadAfter = loadavg()
	logf("done in %v; load average %s", res.Finished.Sub(start).Round(time.Second), res.LoadAfter)
	return writeReport(c, res)
}

// gatewayPhase is the A/B comparison of plain and protected.
func gatewayPhase(c *config, n *node, rotation []string, res *results, hardStop time.Time) error {
	paths := []string{"/api/v1/accounting/invoices", "/api/v1/accounting/invoices/inv_8f2a91/lines", "/api/v1/crm/contacts/c_42"}
	request := func(host, path, token string, buf []byte) []byte {
		buf = append(buf, "GET "...)
		buf = append(buf, path...)
		buf = append(buf, " HTTP/1.1\r\nHost: "...)
		buf = append(buf, host...)
		buf = append(buf, "\r\nAuthorization: Bearer "...)
		buf = append(buf, token...)
		buf = append(buf, "\r\nX-Business-Id: "+benchBusiness+"\r\nAccept: application/json\r\nUser-Agent: oauthgate-bench\r\n\r\n"...)
		return buf
	}
	one := rotation[0]
	fixed := func(host string) requestFunc {
		reqs := make([][]byte, len(paths))
		for i, p := range paths {
			reqs[i] = request(host, p, one, nil)
		}
		return func(seq uint64, buf []byte) []byte { return append(buf, reqs[seq%uint64(len(reqs))]...) }
	}
	gens := map[string]requestFunc{
		scPlain:     fixed(n.plain),
		scProtected: fixed(n.protected),
		scRotation: func(seq uint64, buf []byte) []byte {
			return request(n.protected, paths[seq%uint64(len(paths))], rotation[seq%uint64(len(rotation))], buf)
		},
	}
	addrs := map[string]string{scPlain: n.plain, scProtected: n.protected, scRotation: n.protected}
	// Every answer must be the upstream's: a rejection would be measured
	// as a (fast) success otherwise.
	check := func(_ uint64, body []byte) bool { return len(body) == len(upstreamBody) }

	// Every token once: each is a cache miss, a full ES256 verification.
	logf("cold pass: each of %d tokens once through the gateway", len(rotation))
	res.ColdPass = run(loadSpec{addr: n.protected, conns: c.Conns, dur: 10 * time.Minute, max: int64(len(rotation)), status: 200, gen: gens[scRotation], check: check})
	logf("  %.0f req/s (errors %d, bad %d %s)", res.ColdPass.RPS, res.ColdPass.Errors, res.ColdPass.Bad, res.ColdPass.Statuses)
	if res.ColdPass.Errors+res.ColdPass.Bad > 0 {
		return fmt.Errorf("the gateway refused tokens in the cold pass: %+v", res.ColdPass)
	}
	// Warm-up of both sites (connections, upstream pools, JIT-free but
	// allocator and GC settle).
	for _, sc := range scenarios {
		run(loadSpec{addr: addrs[sc], conns: c.Conns, dur: c.Duration / 5, status: 200, gen: gens[sc], check: check})
	}

	counters := func() (misses, alloc float64) {
		m, err := n.metrics("oauthgate_tokens_cache_misses_total", "go_memstats_alloc_bytes_total")
		if err != nil {
			return -1, -1
		}
		return m["oauthgate_tokens_cache_misses_total"], m["go_memstats_alloc_bytes_total"]
	}
	for r := range c.Rounds {
		if time.Now().After(hardStop) {
			return errors.New("out of time (-max-time)")
		}
		order := slices.Clone(scenarios)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		rd := round{Order: order, Load: loadavg(), Saturated: map[string]runResult{}, Paced: map[string]runResult{}, Misses: map[string]float64{}, CPU: map[string]float64{}, Alloc: map[string]float64{}}
		for _, sc := range order {
			if r == 0 && c.profileDir != "" {
				name := map[string]string{scPlain: "plain.pprof", scProtected: "protected-1.pprof", scRotation: "protected-n.pprof"}[sc]
				go n.profile(max(c.Duration-2*time.Second, time.Second), filepath.Join(c.profileDir, name))
			}
			miss0, alloc0 := counters()
			cpu0, cpuErr := n.cpu()
			rr := run(loadSpec{addr: addrs[sc], conns: c.Conns, dur: c.Duration, status: 200, gen: gens[sc], check: check})
			cpu1, cpuErr1 := n.cpu()
			miss1, alloc1 := counters()
			if cpuErr == nil && cpuErr1 == nil && rr.Requests > 0 {
				rd.CPU[sc] = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(rr.Requests)
			}
			if alloc0 >= 0 && alloc1 >= 0 && rr.Requests > 0 {
				rd.Alloc[sc] = (alloc1 - alloc0) / float64(rr.Requests)
			}
			if sc != scPlain {
				rd.Misses[sc] = miss1 - miss0
			}
			rd.Saturated[sc] = rr
			logf("round %d %-22s saturated: %7.0f req/s p50 %.3fms p99 %.3fms, gateway CPU %.1fµs/req, %.0f B/req allocated (errors %d, bad %d %s)",
				r+1, sc, rr.RPS, rr.P50, rr.P99, rd.CPU[sc], rd.Alloc[sc], rr.Errors, rr.Bad, rr.Statuses)
		}
		// Latency: the three interleaved request by request in one paced
		// run, so each sees the same moments of the machine's other load.
		targets := make([]target, len(order))
		for i, sc := range order {
			targets[i] = target{addr: addrs[sc], gen: gens[sc], status: 200, check: check}
		}
		paced := runTargets(loadSpec{conns: c.LatConns, dur: c.LatDuration, rate: c.Rate * float64(len(order))}, targets)
		for i, sc := range order {
			rr := paced[i]
			rd.Paced[sc] = rr
			logf("round %d %-22s %5.0f/s:   %7.0f req/s p50 %.3fms p90 %.3fms p99 %.3fms p99.9 %.3fms (lagged %d, errors %d, bad %d %s)", r+1, sc, c.Rate, rr.RPS, rr.P50, rr.P90, rr.P99, rr.P999, rr.Lag, rr.Errors, rr.Bad, rr.Statuses)
		}
		res.Rounds = append(res.Rounds, rd)
	}
	return nil
}

// memoryPhase presents MemTokens distinct tokens to a fresh gateway and
// samples its memory as they arrive.
func memoryPhase(c *config, n *node, cl client, res *results, hardStop time.Time) error {
	s, err := loadSigner(n.dataDir, n.issuer, cl.ID)
	if err != nil {
		return fmt.Errorf("reading the signing key: %w", err)
	}
	// One token through first: proves the bench's tokens are accepted.
	probe, err := s.sign(-1)
	if err != nil {
		return err
	}
	check := func(_ uint64, body []byte) bool { return len(body) == len(upstreamBody) }
	request := func(tok string, buf []byte) []byte {
		buf = append(buf, "GET /api/v1/accounting/invoices HTTP/1.1\r\nHost: "...)
		buf = append(buf, n.protected...)
		buf = append(buf, "\r\nAuthorization: Bearer "...)
		buf = append(buf, tok...)
		return append(buf, "\r\nX-Business-Id: "+benchBusiness+"\r\nUser-Agent: oauthgate-bench\r\n\r\n"...)
	}
	gen := func(seq uint64, buf []byte) []byte {
		tok, err := s.sign(int(seq))
		if err != nil {
			tok = "sign-error" // refused, and counted as bad
		}
		return request(tok, buf)
	}
	pr := run(loadSpec{addr: n.protected, conns: 1, dur: 10 * time.Second, max: 1, status: 200, check: check,
		gen: func(_ uint64, buf []byte) []byte { return request(probe, buf) }})
	if pr.Errors+pr.Bad > 0 || pr.Requests != 1 {
		return fmt.Errorf("a bench-signed token was refused: %+v", pr)
	}
	time.Sleep(2 * time.Second)
	if res.LiveHeapStart, err = n.liveHeap(); err != nil {
		return err
	}
	m0, err := n.memory()
	if err != nil {
		return err
	}
	t0 := time.Now()
	res.Memory = append(res.Memory, memSample{Tokens: 0, RSS: m0.RSS, HWM: m0.HWM, HeapInuse: m0.HeapInuse})
	logf("memory: %d distinct tokens; RSS at start %s", c.MemTokens, mib(m0.RSS))
	missBefore, _ := n.metrics("oauthgate_tokens_cache_misses_total")

	var progress atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			m, err := n.memory()
			if err != nil {
				continue
			}
			k := progress.Load()
			res.Memory = append(res.Memory, memSample{Tokens: k, Seconds: time.Since(t0).Seconds(), RSS: m.RSS, HWM: m.HWM, HeapInuse: m.HeapInuse})
			if time.Since(last) >= 20*time.Second {
				logf("  %8d tokens: RSS %s (peak %s), Go heap in use %s", k, mib(m.RSS), mib(m.HWM), mib(m.HeapInuse))
				last = time.Now()
			}
		}
	}()
	limit := time.Until(hardStop) - time.Minute
	res.MemoryRun = run(loadSpec{addr: n.protected, conns: c.Conns, dur: limit, max: int64(c.MemTokens), status: 200, gen: gen, check: check, progress: &progress})
	close(done)
	<-sampled
	// Let ristretto's buffers drain and the GC run, then the settled figure.
	time.Sleep(5 * time.Second)
	if m, err := n.memory(); err == nil {
		res.Memory = append(res.Memory, memSample{Tokens: progress.Load(), Seconds: time.Since(t0).Seconds(), RSS: m.RSS, HWM: m.HWM, HeapInuse: m.HeapInuse})
	}
	if res.LiveHeapEnd, err = n.liveHeap(); err != nil {
		return err
	}
	if after, err := n.metrics("oauthgate_tokens_cache_misses_total"); err == nil {
		res.MemMisses = after["oauthgate_tokens_cache_misses_total"] - missBefore["oauthgate_tokens_cache_misses_total"]
	}
	last := res.Memory[len(res.Memory)-1]
	logf("  done: %d tokens at %.0f req/s; RSS %s (peak %s), heap in use %s, live heap after GC %s (at start %s) (errors %d, bad %d %s)",
		last.Tokens, res.MemoryRun.RPS, mib(last.RSS), mib(last.HWM), mib(last.HeapInuse), mib(res.LiveHeapEnd), mib(res.LiveHeapStart),
		res.MemoryRun.Errors, res.MemoryRun.Bad, res.MemoryRun.Statuses)
	if res.MemoryRun.Errors+res.MemoryRun.Bad > 0 {
		return fmt.Errorf("%d of %d memory-run requests failed", res.MemoryRun.Errors+res.MemoryRun.Bad, res.MemoryRun.Requests)
	}
	return nil
}

// cacheSize reads cache_size from the Caddyfile.
func cacheSize(caddyfile string) (int64, error) {
	b, err := os.ReadFile(caddyfile)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "cache_size" {
			n, err := humanize.ParseBytes(f[1])
			return int64(n), err
		}
	}
	return 0, errors.New("no cache_size in " + caddyfile)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func commandLine() string {
	args := []string{"go", "run", "./cmd/oauthgate-bench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \"'") {
			a = fmt.Sprintf("%q", a)
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// rewriteReport regenerates the report and plots from saved results.
func rewriteReport(c *config) error {
	b, err := os.ReadFile(c.reportFrom)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", c.reportFrom, err)
	}
	saved := res.Config
	saved.out, saved.svgDir = c.out, c.svgDir
	return writeReport(&saved, &res)
}

// writeJSON saves the raw results beside the report.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
