package aggregate

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
)

// TestFollowExactlyOnceUnderSIGKILL runs `floe aggregate --follow` for two
// example specs as subprocesses while a writer appends the generator's
// stream (10 % late events), SIGKILLs each of them 10 times (3 under
// -short) at random moments and at injected points right before and right
// after a commit, restarting them every time; then lets them catch up
// (--once) and compares each summary table with a backfill of the final
// source into a second table: equal row for row, states included.
func TestFollowExactlyOnceUnderSIGKILL(t *testing.T) {
	bin := testenv.FloeBinary(t)
	kills, rows := 10, int64(300_000)
	if testing.Short() {
		kills, rows = 3, 100_000
	}
	ctx := context.Background()
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cat := tabletest.Open(t, cc)
	cfgPath := filepath.Join(dir, "floe.yaml")
	b, err := yaml.Marshal(map[string]any{
		"catalog":         map[string]any{"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse},
		"metrics-address": "off",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	gcfg := genConfig(rows)
	// Long enough for every kill to land while the writer appends.
	gcfg.Rate = float64(rows) / (1.3 * float64(kills))
	gentest.Ensure(t, cat, gcfg)

	specFiles := []string{"page_traffic_hourly.yaml", "orders_city_5m.yaml", "gmv_day_to_date.yaml"}
	genDone := make(chan struct{})
	var genErr error
	go func() {
		defer close(genDone)
		genErr = generate(ctx, cat, gcfg, 5000)
	}()

	var wg sync.WaitGroup
	killedMid := make([]int, len(specFiles))
	for i, file := range specFiles {
		specPath, err := filepath.Abs(filepath.Join("..", "examples", "aggregate", file))
		if err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, strings.TrimSuffix(file, ".yaml")+".log")
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			points := []string{"", "before-commit:0.3", "", "after-commit:0.3"}
			for k := 0; k < kills; k++ {
				crash := points[k%len(points)]
				after := time.Duration(300+rng.IntN(1200)) * time.Millisecond
				outcome, err := runFloeAggregate(bin, cfgPath, specPath, logPath, "--follow", crash, after)
				if err != nil {
					t.Errorf("%s run %d: %v", file, k, err)
					return
				}
				select {
				case <-genDone:
				default:
					killedMid[i]++
				}
				t.Logf("%s run %d (crash=%q, kill after %s): %s", file, k, crash, after, outcome)
			}
		}()
	}
	wg.Wait()
	<-genDone
	if genErr != nil {
		t.Fatal(genErr)
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, file := range specFiles {
		if killedMid[i] < kills {
			t.Errorf("%s: only %d of %d kills landed while the stream was written", file, killedMid[i], kills)
		}
	}

	for _, file := range specFiles {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			specPath, _ := filepath.Abs(filepath.Join("..", "examples", "aggregate", file))
			logPath := filepath.Join(dir, strings.TrimSuffix(file, ".yaml")+".log")
			outcome, err := runFloeAggregate(bin, cfgPath, specPath, logPath, "--once", "", 5*time.Minute)
			if err != nil || outcome != "finished" {
				t.Fatalf("final catch-up: %s %v", outcome, err)
			}
			s := exampleSpec(t, file)
			bs := withOutput(s, s.Output+"_backfill")
			a, err := New(ctx, cat, bs, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Backfill(ctx, BackfillOptions{})
			if err != nil {
				t.Fatal(err)
			}
			streamed := tableRows(t, cat, s.Output)
			backfilled := tableRows(t, cat, bs.Output)
			if !slices.Equal(streamed, backfilled) {
				t.Fatalf("after %d kills the streaming output differs from the backfill: %s", kills, diffRows(streamed, backfilled))
			}
			log, _ := os.ReadFile(logPath)
			t.Logf("%d source rows, %d output rows, %d streaming commits in %d runs: streaming under SIGKILL equals the backfill",
				res.SourceRows, len(streamed), strings.Count(string(log), "msg=committed"), strings.Count(string(log), "---- run"))
		})
	}
}

// runFloeAggregate runs floe aggregate with mode until it exits
// ("finished" on exit 0) or killAfter passes ("killed"); a crash hook
// killing it is "crashed by hook". Any other exit is an error carrying the
// log's tail.
func runFloeAggregate(bin, cfgPath, specPath, logPath, mode, crash string, killAfter time.Duration) (string, error) {
	return testenv.RunKilled(bin, logPath, crash, killAfter, "aggregate", "-config", cfgPath, "--spec", specPath, mode,
		"--poll-interval", "50ms", "--max-batch-delay", "150ms", "--max-batch-rows", "20000", "-log-level", "debug")
}
