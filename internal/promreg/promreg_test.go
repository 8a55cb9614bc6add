package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first, err := Register(reg, prometheus.NewCounter(opts), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A reload registers an equal collector: the first one is reused.
	again, err := Register(reg, prometheus.NewCounter(opts), nil)
	if err != nil || again != first {
		t.Fatalf("re-registering: %v, same collector %v", err, again == first)
	}
	// Another type under the same name is an error, not a panic.
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "x"}), nil); err == nil {
		t.Fatal("a gauge under a counter's name was accepted")
	}
	// An earlier error short-circuits.
	prev := prometheus.AlreadyRegisteredError{}
	if _, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"}), prev); err != prev {
		t.Fatalf("prev not passed through: %v", err)
	}
}
