package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/writer"
)

// TestHealthWrongPassword: a server that refuses the login is what Health
// reports (and floe_mysql_up says 0) until a run logs in again.
func TestHealthWrongPassword(t *testing.T) {
	dsn := mariaDSN(t)
	at := strings.Index(dsn, "@")
	reg := prometheus.NewRegistry()
	cfg := Config{ID: "health", DSN: "nobody_floe:wrong" + dsn[at:], Include: []string{`nodb\.none`}, ServerID: 1_234_567}
	s, err := New(cfg, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health before any run = %v, want nil", err)
	}
	cat := tabletest.OpenSQLite(t)
	w := writer.New(cat, writer.DefaultConfig(), writer.Options{})
	defer w.Abort()
	if err := s.Run(context.Background(), w); err == nil {
		t.Fatal("Run with a wrong password succeeded")
	}
	err = s.Health()
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("Health after a refused login = %v, want ErrUnreachable naming the cause", err)
	}
	if v := gauge(s.m.up); v != 0 {
		t.Fatalf("floe_mysql_up = %v, want 0", v)
	}
	s.setConn(nil)
	if err := s.Health(); err != nil || gauge(s.m.up) != 1 {
		t.Fatalf("after a login: Health = %v, floe_mysql_up = %v", err, gauge(s.m.up))
	}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}
