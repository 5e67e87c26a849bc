package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/source/mysql"
	"github.com/floe-lake/floe/table"
)

// TestVerifyExamples: a clean run over each example reports zero
// differences — every aggregation spec of examples/aggregate followed
// while the generator writes, the CDC example (examples/cdc: its seeds,
// then changes.sql with its schema changes) and the README's Kafka
// example.
func TestVerifyExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run sets the example up and returns its clean runs' reports.
		run func(t *testing.T) []*Report
	}{
		{"aggregate", func(t *testing.T) []*Report {
			return followExamples(t, "page_traffic_hourly.yaml", "dau_daily.yaml", "ad_show_hourly.yaml", "orders_city_5m.yaml", "gmv_day_to_date.yaml")
		}},
		{"mysql/cdc", cdcExample},
		{"kafka/readme", kafkaREADMEExample},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, rep := range tc.run(t) {
				var names []string
				var rows int64
				for _, tr := range rep.Tables {
					names = append(names, tr.Table)
					rows += tr.RowsCompared
				}
				t.Run(fmt.Sprintf("run%d/%s", i+1, strings.Join(names, ",")), func(t *testing.T) {
					var b strings.Builder
					_ = rep.WriteText(&b)
					if !rep.Equal() || rep.Skipped() > 0 || len(rep.Tables) == 0 || rows == 0 {
						t.Fatalf("want every table checked and equal, got\n%s", b.String())
					}
					t.Logf("%d rows compared, equal", rows)
				})
			}
		})
	}
}

// followExamples follows every spec of files over one generated
// clickstream (a follower per spec while the generator writes, then a
// CatchUp) and returns a verification of each summary table.
func followExamples(t *testing.T, files ...string) []*Report {
	t.Helper()
	ctx := context.Background()
	// 60,000 events (and their orders) over 1.5 s: many small source
	// snapshots, late events back to the previous day.
	cat, generate := clickstream(t, 60_000, 40_000)
	var aggs []*aggregate.Aggregator
	var specs []aggregate.Spec
	commits := make([]int, len(files))
	for i, f := range files {
		spec := exampleSpec(t, f)
		a, err := aggregate.New(ctx, cat, spec, aggregate.Options{
			Logger: quietLogger(), PollInterval: 20 * time.Millisecond, MaxBatchDelay: 30 * time.Millisecond,
			MaxBatchRows: 20_000, Concurrency: 1, OnCommit: func(aggregate.CommitInfo) { commits[i]++ },
		})
		if err != nil {
			t.Fatal(err)
		}
		aggs, specs = append(aggs, a), append(specs, spec)
	}
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(aggs))
	for i, a := range aggs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Follow(fctx)
		}()
	}
	genErr := generate(ctx)
	stop()
	wg.Wait()
	if genErr != nil {
		t.Fatal(genErr)
	}
	var reps []*Report
	for i, a := range aggs {
		if errs[i] != nil {
			t.Fatalf("%s: follow: %v", specs[i].Name, errs[i])
		}
		if _, err := a.CatchUp(ctx); err != nil {
			t.Fatalf("%s: catch up: %v", specs[i].Name, err)
		}
		if commits[i] < 2 {
			t.Errorf("%s: %d streaming commits; the example wants several batches", specs[i].Name, commits[i])
		}
		rep, err := Aggregate(ctx, cat, specs[i], AggregateRange{}, Options{Logger: quietLogger(), Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	return reps
}

// exampleMySQLConfig reads the mysql section of examples/cdc/floe.yaml.
func exampleMySQLConfig(t *testing.T) mysql.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "cdc", "floe.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Sources []struct {
			MySQL mysql.Config `yaml:"mysql"`
		} `yaml:"sources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Sources) != 1 {
		t.Fatalf("examples/cdc/floe.yaml: want one source, got %d", len(f.Sources))
	}
	return f.Sources[0].MySQL
}

// testServerID is a replica id of its own for a test's CDC source.
func testServerID() uint32 { return 1_000_000 + rand.Uint32N(1_000_000) }

// cdcExample captures examples/cdc's databases (under names of their own)
// with its config, verifies them, applies changes.sql and verifies again.
func cdcExample(t *testing.T) []*Report {
	if testing.Short() {
		t.Skip("needs MariaDB; skipped under -short")
	}
	dsn := testenv.MariaDB(t)
	dw, dwName := testenv.MariaDBDatabase(t, dsn, "floe_verify_dw_", 2)
	shop, shopName := testenv.MariaDBDatabase(t, dsn, "floe_verify_shop_", 2)
	run := func(file string) {
		b, err := os.ReadFile(filepath.Join("..", "examples", "cdc", file))
		if err != nil {
			t.Fatal(err)
		}
		s := regexp.MustCompile(`\bdwshow\b`).ReplaceAllString(string(b), dwName)
		s = regexp.MustCompile(`\bshop\b`).ReplaceAllString(s, shopName)
		db := shop
		if file == "dwshow.sql" {
			db = dw
		}
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	run("dwshow.sql")
	run("shop.sql")

	cat := tabletest.OpenSQLite(t)
	cfg := exampleMySQLConfig(t)
	cfg.ID = "mysql_" + shopName
	cfg.DSN = dsn
	cfg.ServerID = testServerID()
	cfg.Include = []string{dwName + `\.ad_show`, shopName + `\..*`}
	cfg.BatchDelay = 50 * time.Millisecond
	cfg.PositionCommitInterval = time.Second // other tests move the shared binlog
	runMySQL(t, cat, &cfg)
	mo := MySQLOptions{Wait: 90 * time.Second, PollInterval: 200 * time.Millisecond, ChunkRows: 4}
	verify := func() *Report {
		rep, err := MySQL(context.Background(), cat, cfg, mo, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Tables) != 4 {
			t.Errorf("%d tables checked, want 4 (ad_show, users, orders, order_items)", len(rep.Tables))
		}
		return rep
	}
	first := verify()
	run("changes.sql")
	return []*Report{first, verify()}
}

// kafkaREADMEExample ingests records like the README's into the README's
// Kafka example config (its topic, group and id renamed) and verifies the
// table and the dead letters.
func kafkaREADMEExample(t *testing.T) []*Report {
	brokers := kafkaBrokers(t)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- kafka-example -->\\s*```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```yaml block after <!-- kafka-example -->")
	}
	var f struct {
		Tables  []table.Spec `yaml:"tables"`
		Sources []struct {
			Kafka kafka.Config `yaml:"kafka"`
		} `yaml:"sources"`
	}
	if err := yaml.Unmarshal(m[1], &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Sources) != 1 || len(f.Sources[0].Kafka.Routes) != 1 {
		t.Fatalf("README kafka example: want one source of one route, got %+v", f.Sources)
	}
	id := randomHex(t)
	topic := "floe_verify_readme_" + id
	cfg := f.Sources[0].Kafka
	cfg.ID, cfg.Group, cfg.Brokers = cfg.ID+"_"+id, cfg.Group+"-"+id, brokers
	cfg.Routes[0].Topics = []string{topic}
	cfg.ApplyDefaults()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, topic, 3)
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("u%d", i%7)), Value: []byte(fmt.Sprintf(
			`{"event_id":%d,"event_time":"2026-03-01T12:%02d:00Z","user_id":%d,"event_type":"click","page_url":"/%d","device":{"os":"ios"}}`, i, i%60, i%7, i))})
		if i%50 == 0 {
			recs = append(recs, &kgo.Record{Value: []byte(`{"event_id":"oops","page_url":"/"}`)})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cat := tabletest.OpenSQLite(t)
	src, err := kafka.New(cfg, kafka.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	specs, err := src.Specs(f.Tables)
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, cat, src, specs)
	waitKafkaPositions(t, cat, cl, cfg, topic, 3, 0, cfg.Routes[0].Table, cfg.DeadLetterTable)
	rep, err := Kafka(context.Background(), cat, cfg, KafkaOptions{IdleTimeout: 3 * time.Second}, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tables[0].RowsCompared != int64(len(recs)) {
		t.Errorf("%d offsets compared, want %d", rep.Tables[0].RowsCompared, len(recs))
	}
	return []*Report{rep}
}
