package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildCaddy compiles ./cmd/caddy of the module at root into dir.
func buildCaddy(root, dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building caddy: %w", err)
	}
	return bin, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// node is a running Caddy on examples/bench/Caddyfile.
type node struct {
	cmd       *exec.Cmd
	dataDir   string
	plain     string // host:port of the plain site
	protected string // host:port of the protected site
	admin     string // host:port of the admin endpoint
	issuer    string
	logs      *bytes.Buffer
	done      chan struct{}
}

type ports struct{ plain, protected, admin int }

func pickPorts() (ports, error) {
	var p ports
	for _, dst := range []*int{&p.plain, &p.protected, &p.admin} {
		n, err := freePort()
		if err != nil {
			return p, err
		}
		*dst = n
	}
	return p, nil
}

// startNode runs bin on the Caddyfile with every address on loopback, and
// waits until both sites and the admin API answer.
func startNode(bin, caddyfile, dataDir, upstream string, p ports, env ...string) (*node, error) {
	n := &node{
		dataDir:   dataDir,
		plain:     fmt.Sprintf("127.0.0.1:%d", p.plain),
		protected: fmt.Sprintf("127.0.0.1:%d", p.protected),
		admin:     fmt.Sprintf("127.0.0.1:%d", p.admin),
		issuer:    fmt.Sprintf("http://127.0.0.1:%d", p.protected),
		logs:      &bytes.Buffer{},
		done:      make(chan struct{}),
	}
	n.cmd = exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	n.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+dataDir,
		"XDG_CONFIG_HOME="+dataDir,
		"BENCH_ADMIN="+n.admin,
		fmt.Sprintf("BENCH_PLAIN=:%d", p.plain),
		fmt.Sprintf("BENCH_PROTECTED=:%d", p.protected),
		"BENCH_BIND=127.0.0.1",
		"BENCH_ISSUER="+n.issuer,
		"BENCH_UPSTREAM="+upstream,
	)
	n.cmd.Env = append(n.cmd.Env, env...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting caddy: %w", err)
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-n.done:
			return nil, fmt.Errorf("caddy exited early:\n%s", n.logs.String())
		default:
		}
		if okGet("http://"+n.protected+"/.well-known/oauth-authorization-server") &&
			okGet("http://"+n.plain+"/") && okGet("http://"+n.admin+"/config/") {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("caddy did not become ready:\n%s", n.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func okGet(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop ends the process gracefully, or kills it after 15s.
func (n *node) stop() {
	if n == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// adminJSON calls the admin API.
func (n *node) adminJSON(method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, "http://"+n.admin+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// client is a registered confidential client.
type client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// memory is the process's resident set (VmRSS), its peak (VmHWM), and the
// Go heap as Caddy's /metrics reports it.
type memory struct {
	RSS, HWM  int64 // bytes
	HeapInuse int64 // bytes, go_memstats_heap_inuse_bytes
}

// memory reads /proc/<pid>/status and the admin /metrics.
func (n *node) memory() (memory, error) {
	var m memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		switch name {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in /proc status")
	}
	vals, err := n.metrics("go_memstats_heap_inuse_bytes")
	if err == nil {
		m.HeapInuse = int64(vals["go_memstats_heap_inuse_bytes"])
	}
	return m, nil
}

// metrics scrapes the admin endpoint's /metrics for the named series
// (without labels; a labelled series is summed).
func (n *node) metrics(names ...string) (map[string]float64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + n.admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, name := range names {
			if !strings.HasPrefix(line, name) {
				continue
			}
			rest := line[len(name):]
			if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			if i := strings.LastIndexByte(rest, ' '); i >= 0 {
				if v, err := strconv.ParseFloat(rest[i+1:], 64); err == nil {
					out[name] += v
				}
			}
		}
	}
	return out, sc.Err()
}

// profile saves a CPU profile of the gateway taken over d.
func (n *node) profile(d time.Duration, path string) error {
	c := http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.admin, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// liveHeap forces a garbage collection in the gateway (the heap profile's
// gc=1) and returns the heap then allocated: what the process really
// retains, without the garbage GOGC lets accumulate between cycles.
func (n *node) liveHeap() (int64, error) {
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get("http://" + n.admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no HeapAlloc in the heap profile")
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux everywhere that matters).
const clockTick = 10 * time.Millisecond

// cpu returns the CPU time the gateway process (all its threads) has used.
func (n *node) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is parenthesised and may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return time.Duration(ut+st) * clockTick, nil
}
