package caddymodule

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A held creation answer stops at maxCreationAnswer; a streamed one (not
// 2xx) does not.
func TestCappedRecorder(t *testing.T) {
	for _, tc := range []struct {
		status  int
		size    int
		tooBig  bool
		written int
	}{
		{201, maxCreationAnswer, false, 0},
		{201, maxCreationAnswer + 1, true, 0},
		{500, maxCreationAnswer + 1, false, maxCreationAnswer + 1},
	} {
		w := httptest.NewRecorder()
		var buf bytes.Buffer
		rec := &cappedRecorder{ResponseRecorder: caddyhttp.NewResponseRecorder(w, &buf, func(status int, _ http.Header) bool {
			return status >= 200 && status <= 299
		})}
		rec.WriteHeader(tc.status)
		_, err := rec.ReadFrom(strings.NewReader(strings.Repeat("x", tc.size)))
		if rec.tooLarge != tc.tooBig || (err != nil) != tc.tooBig || (tc.tooBig && !errors.Is(err, errTooLarge)) {
			t.Errorf("%d, %d bytes: too large %v, error %v", tc.status, tc.size, rec.tooLarge, err)
		}
		if w.Body.Len() != tc.written {
			t.Errorf("%d, %d bytes: %d written through, want %d", tc.status, tc.size, w.Body.Len(), tc.written)
		}
		if err := rec.FlushError(); err != nil {
			t.Errorf("flush: %v", err)
		}
	}
}
