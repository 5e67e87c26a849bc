package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/readertest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// TestVerifyCommand: floe verify aggregate exits 0 on a summary table
// equal to its recomputation, 1 once another engine deleted one of its
// rows (naming it in text and JSON), 2 when it cannot run; with
// -pushgateway it pushes the floe_verify_* metrics.
func TestVerifyCommand(t *testing.T) {
	cfgPath, cc := aggregateTestConfig(t)
	spec := filepath.Join("..", "..", "examples", "aggregate", "orders_city_5m.yaml")
	var out, errOut bytes.Buffer
	if code := run([]string{"aggregate", "-config", cfgPath, "-spec", spec, "-once"}, &out, &errOut); code != 0 {
		t.Fatalf("aggregate: exit %d\n%s", code, &errOut)
	}

	var mu sync.Mutex
	var pushed []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushed = append(pushed, r.Method+" "+r.URL.Path+"\n"+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()

	type step struct {
		name     string
		before   func(t *testing.T)
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}
	base := []string{"verify", "aggregate", "-config", cfgPath, "-spec", spec}
	steps := []step{
		{name: "equal", args: append(base[:len(base):len(base)], "-pushgateway", gw.URL),
			wantOut: []string{"ads.orders_city_5m", "equal", "verify aggregate: 1 tables, equal"}},
		{name: "a row deleted", before: func(t *testing.T) { deleteFirstGroup(t, cc) },
			args: append(base[:len(base):len(base)], "-format", "json"), wantCode: 1,
			wantOut: []string{`"kind": "missing"`, `"missing": 1`}, wantErr: []string{"1 differences"}},
		{name: "text lists it", args: base, wantCode: 1, wantOut: []string{"missing  window_start=", "DIFFERENT"}},
		{name: "no check", args: []string{"verify"}, wantCode: 2, wantErr: []string{"want a check"}},
		{name: "unknown check", args: []string{"verify", "nope", "-config", cfgPath}, wantCode: 2, wantErr: []string{`unknown check "nope"`}},
		{name: "no spec", args: []string{"verify", "aggregate", "-config", cfgPath}, wantCode: 2, wantErr: []string{"-spec: required"}},
		{name: "no mysql source", args: []string{"verify", "mysql", "-config", cfgPath}, wantCode: 2, wantErr: []string{"config has no mysql source"}},
		{name: "bad format", args: append(base[:len(base):len(base)], "-format", "xml"), wantCode: 2, wantErr: []string{"-format"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before(t)
			}
			var out, errOut bytes.Buffer
			code := run(s.args, &out, &errOut)
			if code != s.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, s.wantCode, &out, &errOut)
			}
			for _, w := range s.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout does not mention %q:\n%s", w, &out)
				}
			}
			for _, w := range s.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, &errOut)
				}
			}
			if strings.Contains(strings.Join(s.args, " "), "json") && code != 2 {
				var v map[string]any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil {
					t.Errorf("-format json: %v\n%s", err, &out)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pushed) != 1 {
		t.Fatalf("pushes: %d, want 1", len(pushed))
	}
	// The body is protobuf-delimited: look for the names it carries.
	for _, w := range []string{"PUT /metrics/job/floe_verify_aggregate\n", "floe_verify_rows_compared_total",
		"floe_verify_differences", "missing", "ads.orders_city_5m", "floe_verify_last_run_timestamp_seconds"} {
		if !strings.Contains(pushed[0], w) {
			t.Errorf("push does not hold %q:\n%q", w, pushed[0])
		}
	}
}

// deleteFirstGroup deletes the first group of the summary table with
// iceberg-go, as another engine would.
func deleteFirstGroup(t *testing.T, cc catalog.Config) {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	var filter iceberg.BooleanExpression
	readertest.Each(t, cat, "ads.orders_city_5m", nil, reader.Config{Columns: []string{"window_start", "province", "city"}}, func(rec arrow.RecordBatch) {
		if filter == nil && rec.NumRows() > 0 {
			ws := rec.Column(0).(*array.Timestamp).Value(0)
			filter = iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("window_start"), iceberg.Timestamp(ws)),
				iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("province"), rec.Column(1).(*array.String).Value(0)),
					iceberg.EqualTo(iceberg.Reference("city"), rec.Column(2).(*array.String).Value(0))))
		}
	})
	tbl := tabletest.Load(t, cat, "ads.orders_city_5m")
	txn := tbl.NewTransaction()
	if err := txn.Delete(ctx, filter, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
