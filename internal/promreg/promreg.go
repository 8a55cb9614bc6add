// Package promreg registers Prometheus collectors the way Caddy modules
// need: Caddy provisions modules again on every config reload, and a
// collector an earlier load registered is reused rather than an error.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns the collector to use: c, or
// the equal one registered before. Once prev is not nil it does nothing and
// returns prev, so a run of calls can share one error.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T, prev error) (T, error) {
	if prev != nil {
		return c, prev
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
