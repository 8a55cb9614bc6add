package main

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// upstreamBody is what the service behind both sites answers: a small JSON
// list, like the demo's accounting upstream, with a fixed length.
var upstreamBody = []byte(`[{"id":"inv_abc123","number":"INV-2026-0001","status":"SENT","total":"1200.00","currency":"GBP"}]`)

// startUpstream serves upstreamBody on a free loopback port until stop is
// called. It is the same for both sites, so it cancels out of every ratio.
func startUpstream() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	length := strconv.Itoa(len(upstreamBody))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{length}
			w.Write(upstreamBody)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }, nil
}
