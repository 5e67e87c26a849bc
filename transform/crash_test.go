package transform

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
)

// TestFollowExactlyOnceUnderSIGKILL runs `floe transform -follow` (a spec
// with two dimension joins and dedup) as a subprocess while orders are
// appended and the users dimension changes every few snapshots, SIGKILLs
// it 10 times (3 under -short) at random moments and at injected points
// right before and right after a commit, restarting it every time; then
// lets it catch up (-once) and compares the output with a backfill into a
// second table: equal row for row.
func TestFollowExactlyOnceUnderSIGKILL(t *testing.T) {
	bin := testenv.FloeBinary(t)
	kills, batches := 10, 200
	if testing.Short() {
		kills, batches = 3, 60
	}
	const batchRows = 1000
	ctx := context.Background()
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cat := tabletest.Open(t, cc)
	for _, s := range []table.Spec{ordersSpec, usersSpec, regionsSpec} {
		if _, err := table.Ensure(ctx, cat, s); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "floe.yaml")
	writeYAML(t, cfgPath, map[string]any{
		"catalog":         map[string]any{"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse},
		"metrics-address": "off",
	})
	spec := Spec{Name: "detail", SQL: detailSQL, Output: "dwd.order_detail",
		Dedup: &Dedup{Key: []string{"order_id"}, Time: "event_time", Window: Duration(time.Hour)}}
	specPath := filepath.Join(dir, "detail.yaml")
	writeYAML(t, specPath, spec)

	const users = 50
	appendRows(t, cat, "ods.regions", []any{int64(0), "Zhejiang"}, []any{int64(1), "Jiangsu"}, []any{int64(2), "Anhui"})
	if err := writeUsers(ctx, cat, 0, users); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			// Spread the batches over the kills.
			pause := time.Duration(2.5*float64(kills)*float64(time.Second)) / time.Duration(batches)
			for b := range batches {
				if err := writeOrders(ctx, cat, b, batchRows, users); err != nil {
					return err
				}
				if b%10 == 9 {
					if err := writeUsers(ctx, cat, b/10+1, users); err != nil {
						return err
					}
				}
				time.Sleep(pause)
			}
			return nil
		}()
	}()

	logPath := filepath.Join(dir, "transform.log")
	run := func(mode, crash string, after time.Duration) (string, error) {
		return testenv.RunKilled(bin, logPath, crash, after, "transform", "-config", cfgPath, "-spec", specPath, mode,
			"-poll-interval", "50ms", "-max-batch-delay", "150ms", "-max-batch-rows", "5000", "-log-level", "debug")
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	points := []string{"", "before-commit:0.3", "", "after-commit:0.3"}
	killedMid := 0
	for k := range kills {
		crash := points[k%len(points)]
		after := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		outcome, err := run("-follow", crash, after)
		if err != nil {
			t.Fatalf("run %d: %v", k, err)
		}
		select {
		case err := <-done:
			done <- err
		default:
			killedMid++
		}
		t.Logf("run %d (crash=%q, kill after %s): %s", k, crash, after, outcome)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if killedMid < kills {
		t.Errorf("only %d of %d kills landed while the source was written", killedMid, kills)
	}
	if outcome, err := run("-once", "", 5*time.Minute); err != nil || outcome != "finished" {
		t.Fatalf("final catch-up: %s %v", outcome, err)
	}
	bs := spec
	bs.Output = "dwd.order_detail_backfill"
	res := backfill(t, newT(t, cat, bs))
	streamed := rowsOf(t, cat, spec.Output)
	backfilled := rowsOf(t, cat, bs.Output)
	if !slices.Equal(streamed, backfilled) {
		t.Fatalf("after %d kills the streaming output differs from the backfill:%s", kills, diff(backfilled, streamed))
	}
	// Every tenth row of every batch but the first is a duplicate.
	if want := res.SourceRows - int64((batches-1)*batchRows/10); int64(len(streamed)) != want {
		t.Fatalf("%d output rows of %d source rows, want %d: dedup dropped the wrong rows", len(streamed), res.SourceRows, want)
	}
	log, _ := os.ReadFile(logPath)
	t.Logf("%d source rows, %d output rows, %d streaming commits in %d runs: streaming under SIGKILL equals the backfill",
		res.SourceRows, len(streamed), strings.Count(string(log), "msg=committed"), strings.Count(string(log), "---- run"))
}

func writeYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeOrders appends batch b of the orders: ids b*rows.., every tenth
// row repeating an order of the previous batch 10 minutes later (a
// duplicate event, dropped by dedup), one minute of event time per batch.
func writeOrders(ctx context.Context, cat icecat.Catalog, b, rows, users int) error {
	out := make([][]any, rows)
	for i := range rows {
		id, at := int64(b*rows+i), t0.Add(time.Duration(b)*time.Minute+time.Duration(i)*time.Millisecond)
		if i%10 == 0 && b > 0 {
			id, at = int64((b-1)*rows+i+1), at.Add(10*time.Minute)
		}
		out[i] = []any{id, int64(i % (users + 5)), int64(i), at}
	}
	return commitRows(ctx, cat, "ods.orders", out, false)
}

// writeUsers replaces the users dimension with version v: user u lives in
// city "c<u>-v<v>" of region (u+v)%3.
func writeUsers(ctx context.Context, cat icecat.Catalog, v, users int) error {
	out := make([][]any, users)
	for u := range users {
		out[u] = []any{int64(u), fmt.Sprintf("c%d-v%d", u, v), int64((u + v) % 3)}
	}
	return commitRows(ctx, cat, "ods.users", out, true)
}

func commitRows(ctx context.Context, cat icecat.Catalog, name string, rows [][]any, replace bool) error {
	tbl, err := cat.LoadTable(ctx, icecat.ToIdentifier(name))
	if err != nil {
		return err
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return err
	}
	rec := tabletest.Record(sc, rows...)
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	defer rdr.Release()
	txn := tbl.NewTransaction()
	if replace {
		err = txn.Overwrite(ctx, rdr, nil, icetable.WithOverwriteFilter(iceberg.AlwaysTrue{}))
	} else {
		err = txn.Append(ctx, rdr, nil)
	}
	if err != nil {
		return err
	}
	_, err = txn.Commit(ctx)
	return err
}
