package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/floe-lake/floe/service"
)

// newRegistry is a daemon's registry, with the Go runtime's and the
// process's collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startMetrics serves metrics on flagAddr when it is set, else on
// configured; an address "" or "off" serves none. ready and routes are
// serveMetrics'. stop is never nil.
func startMetrics(flagAddr, configured string, reg *prometheus.Registry, log *slog.Logger, ready func() error, routes ...func(*http.ServeMux)) (stop func(), err error) {
	addr := configured
	if flagAddr != "" {
		addr = flagAddr
	}
	if addr == "" || addr == "off" {
		return func() {}, nil
	}
	return serveMetrics(addr, reg, log, ready, routes...)
}

// serveMetrics is service.Serve; a listen failure is a usageError.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, ready func() error, routes ...func(*http.ServeMux)) (stop func(), err error) {
	stop, err = service.Serve(addr, reg, log, ready, routes...)
	if err != nil {
		return nil, usageError{err}
	}
	return stop, nil
}
