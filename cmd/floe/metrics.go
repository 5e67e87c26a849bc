package main

import (
	"errors"
	"log/slog"
	"net/http"
	"syscall"

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

// serveDefault serves metrics on addr, else on def; "" or "off" serves
// none. Several processes of one command on a host (one per spec) cannot
// share def: when it is taken this one serves none and says so, while an
// address given explicitly must be free.
func serveDefault(addr, def string, reg *prometheus.Registry, e *env, ready func() error) (stop func(), err error) {
	explicit := addr != ""
	if !explicit {
		addr = def
	}
	if addr == "" || addr == "off" {
		return func() {}, nil
	}
	stop, err = serveMetrics(addr, reg, e.log, ready)
	if err != nil && !explicit && errors.Is(err, syscall.EADDRINUSE) {
		e.log.Warn("the default metrics address is in use (another process of this command?); serving no metrics: give each process its own -metrics-address",
			"address", addr, "err", err)
		return func() {}, nil
	}
	return stop, err
}
