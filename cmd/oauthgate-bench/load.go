package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator speaks HTTP/1.1 over raw keep-alive connections rather
// than through net/http's client: it costs a fraction of the CPU per
// request, which matters when generator and gateway share two cores. Both
// sides of every A/B comparison pay the same for it.

// requestTimeout bounds every request, so a stuck server cannot hang a run.
const requestTimeout = 10 * time.Second

// httpConn is one keep-alive HTTP/1.1 connection.
type httpConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func (h *httpConn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// roundTrip sends req (a complete HTTP/1.1 request) and reads the response.
// The body is appended to *body when body is not nil, discarded otherwise.
// A request that fails on a reused connection (the server may have closed
// it while idle) is retried once on a new one.
func (h *httpConn) roundTrip(req []byte, body *[]byte) (int, error) {
	reused := h.c != nil
	status, err := h.try(req, body)
	if err != nil && reused {
		h.close()
		status, err = h.try(req, body)
	}
	return status, err
}

func (h *httpConn) try(req []byte, body *[]byte) (int, error) {
	if h.c == nil {
		c, err := net.DialTimeout("tcp", h.addr, requestTimeout)
		if err != nil {
			return 0, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		h.c = c
		if h.br == nil {
			h.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			h.br.Reset(c)
		}
	}
	h.c.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := h.c.Write(req); err != nil {
		h.close()
		return 0, err
	}
	status, err := h.readResponse(body)
	if err != nil {
		h.close()
	}
	return status, err
}

// readResponse parses the status line and headers, then reads the body as
// framed by Content-Length or chunked encoding.
func (h *httpConn) readResponse(body *[]byte) (int, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closeConn := int64(-1), false, false
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(val), 10, 64); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeConn = bytes.EqualFold(val, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = h.readChunked(body)
	case length >= 0:
		err = h.readN(length, body)
	case status == 204 || status == 304:
	default:
		return 0, errors.New("response without a length: unsupported")
	}
	if err != nil {
		return 0, err
	}
	if closeConn {
		h.close()
	}
	return status, nil
}

func (h *httpConn) readN(n int64, body *[]byte) error {
	if body == nil {
		_, err := h.br.Discard(int(n))
		return err
	}
	start := len(*body)
	*body = slices.Grow(*body, int(n))[:start+int(n)]
	_, err := io.ReadFull(h.br, (*body)[start:])
	return err
}

func (h *httpConn) readChunked(body *[]byte) error {
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers
				l, err := h.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := h.readN(n, body); err != nil {
			return err
		}
		if _, err := h.br.Discard(2); err != nil {
			return err
		}
	}
}

// requestFunc appends the seq-th request of a run to buf.
type requestFunc func(seq uint64, buf []byte) []byte

// checkFunc inspects the body of the seq-th response; nil means bodies are
// not read.
type checkFunc func(seq uint64, body []byte) bool

// runResult is what one run measured.
type runResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`   // transport errors
	Bad      int64   `json:"bad"`      // unexpected status or body
	Seconds  float64 `json:"seconds"`  // wall time of the run
	RPS      float64 `json:"rps"`      // good responses per second
	P50      float64 `json:"p50_ms"`   // latency percentiles, milliseconds
	P90      float64 `json:"p90_ms"`   //
	P99      float64 `json:"p99_ms"`   //
	P999     float64 `json:"p999_ms"`  //
	Max      float64 `json:"max_ms"`   //
	Lag      int64   `json:"lagged"`   // fixed-rate requests sent >1ms late
	Statuses string  `json:"statuses"` // unexpected statuses seen, for the log
}

// target is one server a run sends requests to.
type target struct {
	addr   string
	gen    requestFunc
	status int
	check  checkFunc
}

// loadSpec describes one run.
type loadSpec struct {
	addr  string
	conns int
	// dur and max bound the run: whichever comes first.
	dur time.Duration
	max int64
	// rate > 0 paces requests (open loop, across all connections);
	// 0 sends back to back (closed loop: throughput at saturation).
	rate   float64
	gen    requestFunc
	status int
	check  checkFunc
	// progress, if set, counts good responses as they arrive.
	progress *atomic.Int64
}

// run executes spec and returns its measurements.
func run(spec loadSpec) runResult {
	return runTargets(spec, []target{{addr: spec.addr, gen: spec.gen, status: spec.status, check: spec.check}})[0]
}

// runTargets runs spec against several targets at once, interleaved
// request by request (request i goes to target i mod len(targets), each
// worker holding a connection to every target), so that they share every
// moment of the run: whatever else the machine does falls on all of them
// alike. Each target's generator sees its own sequence numbers.
func runTargets(spec loadSpec, targets []target) []runResult {
	k := uint64(len(targets))
	type acc struct {
		lats                 []time.Duration
		n, errs, bad, lagged int64
		statuses             map[int]int
	}
	var (
		seq   atomic.Uint64
		wg    sync.WaitGroup
		mu    sync.Mutex
		total = make([]acc, k)
	)
	for i := range total {
		total[i].statuses = map[int]int{}
	}
	start := time.Now()
	deadline := start.Add(spec.dur)
	interval := time.Duration(0)
	if spec.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(spec.conns) / spec.rate)
	}
	for w := range spec.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns := make([]*httpConn, k)
			local := make([]acc, k)
			for i, t := range targets {
				conns[i] = &httpConn{addr: t.addr}
				defer conns[i].close()
				local[i].lats = make([]time.Duration, 0, 1<<12)
				local[i].statuses = map[int]int{}
			}
			var buf, body []byte
			// Paced workers start staggered so the total rate is even.
			next := start.Add(interval * time.Duration(w) / time.Duration(spec.conns))
			for {
				s := seq.Add(1) - 1
				if spec.max > 0 && int64(s) >= spec.max {
					break
				}
				ti := s % k
				t, a := targets[ti], &local[ti]
				// The request is built before the clock starts: building
				// may sign a token (memory run), which is not the server's
				// time.
				buf = t.gen(s/k, buf[:0])
				sendAt := time.Now()
				if interval > 0 {
					if d := next.Sub(sendAt); d > 0 {
						time.Sleep(d)
						sendAt = time.Now()
					}
					// Coordinated omission: a request that should have gone
					// out more than 1ms ago is timed from when it should have.
					if sendAt.Sub(next) > time.Millisecond {
						a.lagged++
						sendAt = next
					}
					next = next.Add(interval)
				}
				if !sendAt.Before(deadline) {
					break
				}
				var bp *[]byte
				if t.check != nil {
					body = body[:0]
					bp = &body
				}
				status, err := conns[ti].roundTrip(buf, bp)
				lat := time.Since(sendAt)
				a.n++
				switch {
				case err != nil:
					a.errs++
				case status != t.status || (t.check != nil && !t.check(s/k, body)):
					a.bad++
					a.statuses[status]++
				default:
					a.lats = append(a.lats, lat)
					if spec.progress != nil {
						spec.progress.Add(1)
					}
				}
			}
			mu.Lock()
			for i := range local {
				l, t := &local[i], &total[i]
				t.n += l.n
				t.errs += l.errs
				t.bad += l.bad
				t.lagged += l.lagged
				t.lats = append(t.lats, l.lats...)
				for st, c := range l.statuses {
					t.statuses[st] += c
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out := make([]runResult, k)
	for i := range total {
		t, r := &total[i], &out[i]
		r.Requests, r.Errors, r.Bad, r.Lag, r.Seconds = t.n, t.errs, t.bad, t.lagged, secs
		r.RPS = float64(len(t.lats)) / secs
		slices.Sort(t.lats)
		r.P50, r.P90, r.P99, r.P999 = pct(t.lats, 50), pct(t.lats, 90), pct(t.lats, 99), pct(t.lats, 99.9)
		if len(t.lats) > 0 {
			r.Max = ms(t.lats[len(t.lats)-1])
		}
		if len(t.statuses) > 0 {
			r.Statuses = fmt.Sprint(t.statuses)
		}
	}
	return out
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
