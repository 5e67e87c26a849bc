package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/cdcgen"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// warehouseSpec is one spec of examples/warehouse the must-show runs:
// streamed while the topics are written, then backfilled into
// output+"_backfill" and compared; duckdb (a file of the example) is the
// SQL text DuckDB runs over the ODS and DWD tables, compared with compare
// (the output, optionally with a WHERE clause) by duckdb_check.py; for a
// transform it is the spec itself, whose sql: DuckDB runs per source
// snapshot with the dimensions as of its commit, as floe transform joins.
type warehouseSpec struct {
	kind    string // transform or aggregate
	file    string // relative to examples/warehouse: YAML, or .sql (with output)
	output  string
	source  string // the table it reads, whose snapshots its cursor follows
	duckdb  string // DuckDB's text for the cross-check; "" for none
	compare string // what duckdb_check.py compares with; default output
}

// warehouseSpecs are the example's specs, in both forms where the
// example has both (a .sql aggregation writes output, named after it).
var warehouseSpecs = []warehouseSpec{
	{kind: "transform", file: "dwd/order_detail.yaml", output: "dwd.order_detail", source: "ods.orders_changes", duckdb: "dwd/order_detail.yaml"},
	{kind: "aggregate", file: "dws/gmv_city_5m.yaml", output: "dws.gmv_city_5m", source: "dwd.order_detail",
		duckdb: "dws/gmv_city_5m.sql", compare: "dws.gmv_city_5m WHERE rank <= 3"},
	{kind: "aggregate", file: "dws/gmv_city_5m.sql", output: "dws.gmv_city_5m_sql", source: "dwd.order_detail",
		duckdb: "dws/gmv_city_5m.sql", compare: "dws.gmv_city_5m_sql WHERE rank <= 3"},
	{kind: "aggregate", file: "ads/ad_show.yaml", output: "ads.ad_show", source: "ods.ad_events", duckdb: "ads/ad_show.sql"},
	{kind: "aggregate", file: "ads/ad_show.sql", output: "ads.ad_show_sql", source: "ods.ad_events", duckdb: "ads/ad_show.sql"},
	{kind: "aggregate", file: "ads/dau_daily.yaml", output: "ads.dau_daily", source: "ods.ad_events", duckdb: "ads/dau_daily.sql"},
	{kind: "aggregate", file: "ads/gmv_dtd.yaml", output: "ads.gmv_dtd", source: "dwd.order_detail", duckdb: "ads/gmv_dtd.sql"},
	{kind: "aggregate", file: "ads/gmv_dtd.sql", output: "ads.gmv_dtd_sql", source: "dwd.order_detail", duckdb: "ads/gmv_dtd.sql"},
}

// warehouseSize is the size of TestWarehouseMustShow: FLOE_WAREHOUSE_CHANGES
// row changes (default 25000; `make warehouse-mustshow`: 300000) with
// FLOE_WAREHOUSE_KILLS SIGKILLs of the streaming side (default 3; the
// must-show: 10).
func warehouseSize(t *testing.T) (changes, kills int) {
	get := func(name string, def, least int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			t.Fatalf("%s=%q: want a number >= %d", name, v, least)
		}
		return n
	}
	return get("FLOE_WAREHOUSE_CHANGES", 25000, 1000), get("FLOE_WAREHOUSE_KILLS", 3, 0)
}

// TestWarehouseMustShow is issue 12's must-show for the example specs:
// integration/cdcgen writes a shop database's changes as Canal JSON to
// fresh topics, paced, while one `floe run` process (the example's two
// Kafka sources, the transform and every aggregation, YAML and SQL)
// streams them through
// ODS → DWD → DWS/ADS, SIGKILLed and restarted at random moments. Once
// production ends and every cursor has reached its source's current
// snapshot (the ODS mirrors equal to the generator's replay), the
// streaming side is stopped, each spec is run as a backfill into a
// second table, and streaming equals backfill row for row (aggregation
// states included); then DuckDB runs each spec's SQL text over the same
// tables (examples/warehouse/duckdb_check.py, the engines venv) and gets
// the rows Floe wrote.
//
// The lake is a SQLite catalog and a local warehouse, as
// examples/warehouse/run.sh uses: PyIceberg reads it with no server, and
// the must-show is about the specs' results, which the store does not
// change (the writer's protocol on MinIO has its own crash tests).
func TestWarehouseMustShow(t *testing.T) {
	if testing.Short() {
		t.Skip("a few minutes; skipped under -short")
	}
	brokers := kafkaBrokers(t)
	changes, kills := warehouseSize(t)
	bin := testenv.FloeBinary(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ex := filepath.Join(root, "examples", "warehouse")
	dir := upsertLogDir(t)
	genBin := filepath.Join(dir, "cdcgen")
	if out, err := exec.Command("go", "build", "-o", genBin, filepath.Join(root, "integration", "cdcgen")).CombinedOutput(); err != nil {
		t.Fatalf("build cdcgen: %v\n%s", err, out)
	}
	began := time.Now()

	// The generator, in process too: the rows each ODS table must hold.
	seed := uint64(time.Now().UnixNano() % 1_000_000)
	if v := os.Getenv("FLOE_WAREHOUSE_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	// The stream starts at 23:30 in Asia/Shanghai and crosses the local
	// midnight: 200 ms of database time per event in CI (25k changes, ~18k
	// events: an hour), 20 ms at full size (300k changes: about an hour).
	step := 20 * time.Millisecond
	if changes < 100000 {
		step = 200 * time.Millisecond
	}
	gcfg := cdcgen.DefaultConfig()
	gcfg.Seed, gcfg.Changes, gcfg.Step, gcfg.LoadUsers = seed, changes, step, true
	gen, err := cdcgen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := gen.Next(); !ok {
			break
		}
	}
	want := map[string][]string{}
	for _, name := range []string{cdcgen.TableOrders, cdcgen.TableUsers, cdcgen.TableRegions, cdcgen.TableAdEvents} {
		want["ods."+name] = canonicalRows(cdcgen.Tables()[name], gen.Replay(name))
	}
	wantLog := gen.TableChanges(cdcgen.TableOrders)

	id := kafkaRandHex(t)
	prefix := "wh-" + id
	for _, name := range []string{cdcgen.TableOrders, cdcgen.TableUsers, cdcgen.TableRegions, cdcgen.TableAdEvents} {
		createTopic(t, brokers, prefix+"."+name, int32(gcfg.Partitions))
	}
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cfgPath := writeWarehouseConfig(t, ex, dir, cc, brokers, prefix)

	// The streaming side: one floe run (a .sql aggregation is listed with
	// its output and a name of its own, beside its YAML twin).
	start := func() []*floeProc {
		return []*floeProc{startFloeCmd(t, bin, dir, "run", "run", "-config", cfgPath, "-metrics-address", "off", "-log-level", "info")}
	}
	procs := start()
	defer func() {
		for _, p := range procs {
			if _, done := p.exited(); !done {
				p.kill()
			}
		}
	}()

	// The producer: the dimensions' load, a pause for the mirrors to
	// commit it, then the changes paced over the kills.
	produceFor := time.Duration(8*kills+10) * time.Second
	rate := max(int(float64(changes)/produceFor.Seconds()), 100)
	genArgs := []string{"-brokers", strings.Join(brokers, ","), "-format", cdcgen.FormatCanal, "-topic", prefix + ".{table}",
		"-seed", strconv.FormatUint(seed, 10), "-changes", strconv.Itoa(changes), "-keys", strconv.Itoa(gcfg.Keys),
		"-step", step.String(), "-load-users", "-load-pause", "4s", "-rate", strconv.Itoa(rate), "-create-topics=false"}
	genLog, err := os.Create(filepath.Join(dir, "cdcgen.log"))
	if err != nil {
		t.Fatal(err)
	}
	producer := exec.Command(genBin, genArgs...)
	producer.Stdout, producer.Stderr = genLog, genLog
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	prodDone := make(chan error, 1)
	go func() { prodDone <- producer.Wait(); _ = genLog.Close() }()
	defer func() { _ = producer.Process.Kill() }()
	t.Logf("seed %d: %d changes at %d/s (%s of database time per event) to %s.{orders,users,regions,ad_events}; lake and logs in %s",
		seed, changes, rate, step, prefix, dir)

	rng := mrand.New(mrand.NewPCG(seed, 12))
	killedMid := 0
	runLog := filepath.Join(dir, "run.log")
	for i := range kills {
		// Each kill lands at a random moment after the restarted side
		// made progress: a commit of a transform or an aggregation (so
		// after the ingest committed), then 0-3 s more.
		before := countIn(runLog, "msg=committed")
		for wait := time.Now().Add(time.Minute); countIn(runLog, "msg=committed") == before && time.Now().Before(wait); {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
		for _, p := range procs {
			if err, done := p.exited(); done {
				t.Fatalf("%s exited by itself: %v (see %s.log)", p.name, err, filepath.Join(dir, p.name))
			}
			p.kill()
		}
		select {
		case err := <-prodDone:
			prodDone <- err
		default:
			killedMid++
		}
		pause := time.Duration(rng.IntN(1000)) * time.Millisecond
		t.Logf("kill %d: SIGKILLed the streaming side, restarting in %s", i+1, pause)
		time.Sleep(pause)
		procs = start()
	}
	if err := <-prodDone; err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "cdcgen.log"))
		t.Fatalf("cdcgen: %v\n%s", err, b)
	}
	if killedMid < kills {
		t.Errorf("only %d of %d kills landed while cdcgen produced (production too fast for the kills)", killedMid, kills)
	}
	produced := time.Since(began)

	// Caught up: the ODS tables hold the replay, every spec's cursor is
	// its source's current snapshot.
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Duration(3+changes/25000) * time.Minute)
	for {
		lag := warehouseLag(cat, want, wantLog)
		if lag == "" {
			break
		}
		for _, p := range procs {
			if err, done := p.exited(); done {
				t.Fatalf("%s exited: %v (see %s.log)", p.name, err, filepath.Join(dir, p.name))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not catch up: %s", lag)
		}
		time.Sleep(2 * time.Second)
	}
	caughtUp := time.Since(began)
	for _, p := range procs {
		p.stop(t)
	}
	if lag := warehouseLag(cat, want, wantLog); lag != "" {
		t.Fatalf("after the stop: %s", lag)
	}
	for name, rows := range want {
		if d := tabletest.DiffRows(rows, mirrorRows(t, cc, name)); d != "" {
			t.Fatalf("%s differs from the replay: %s", name, d)
		}
	}
	t.Logf("caught up %s after the start (production took %s); the ODS tables equal the replay: %d orders, %d users, %d regions, %d ad events, %d order changes",
		caughtUp.Round(time.Second), produced.Round(time.Second), len(want["ods.orders"]), len(want["ods.users"]), len(want["ods.regions"]),
		len(want["ods.ad_events"]), wantLog)

	// Streaming = backfill, spec by spec.
	for _, s := range warehouseSpecs {
		bfOut := s.output + "_backfill"
		args := []string{s.kind, "-config", cfgPath, "-backfill", "-metrics-address", "off"}
		if strings.HasSuffix(s.file, ".sql") {
			args = append(args, "-spec", filepath.Join(ex, s.file), "-output", bfOut)
		} else {
			args = append(args, "-spec", specWithOutput(t, ex, dir, s.file, bfOut))
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("floe %s: %v\n%s", strings.Join(args, " "), err, testenv.LastLines(out, 20))
		}
		streamed := mirrorRows(t, cc, s.output)
		backfilled := mirrorRows(t, cc, bfOut)
		if !slices.Equal(backfilled, streamed) {
			d := tabletest.DiffRows(shortCells(backfilled), shortCells(streamed))
			if d == "" {
				d = "in long cells only (aggregation states)"
			}
			t.Errorf("%s (%s): after %d kills the streaming output differs from the backfill (backfill first; long cells cut): %s", s.output, s.file, kills, d)
			continue
		}
		t.Logf("%s (%s): streaming = backfill, %d rows", s.output, s.file, len(streamed))
	}
	if t.Failed() {
		t.FailNow()
	}

	// DuckDB runs the specs' SQL texts over the same tables.
	py := enginesPython(root)
	if py == "" {
		msg := "DuckDB cross-check skipped: no engines venv (integration/engines/setup.sh python, or FLOE_ENGINES_PYTHON)"
		if os.Getenv("FLOE_WAREHOUSE_DUCKDB") == "required" {
			t.Fatal(msg)
		}
		t.Log(msg)
		return
	}
	checkArgs := []string{filepath.Join(ex, "duckdb_check.py"), "--catalog", cc.URI, "--warehouse", cc.Warehouse, "--rows", "0"}
	for _, s := range warehouseSpecs {
		if s.duckdb == "" {
			continue
		}
		cmp := s.compare
		if cmp == "" {
			cmp = s.output
		}
		checkArgs = append(checkArgs, filepath.Join(ex, s.duckdb)+"="+cmp)
	}
	out, err := exec.Command(py, checkArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("DuckDB's cross-check failed: %v\n%s", err, out)
	}
	t.Logf("DuckDB ran the SQL texts and got Floe's rows:\n%s", out)
	t.Logf("done in %s: %d changes, %d kills, %d streaming commits of the transform and aggregations",
		time.Since(began).Round(time.Second), changes, kills, countIn(runLog, "msg=committed"))
}

// writeWarehouseConfig writes examples/warehouse/floe.yaml into dir for
// this run: the lake in dir, the topics prefixed, fresh consumer groups,
// quick group sessions (a killed member leaves fast), and the example's
// transform and YAML aggregations for floe run. Compaction is off: it
// expires snapshots, and the transform's backfill reads the dimensions'
// history by time travel.
func writeWarehouseConfig(t *testing.T, ex, dir string, cc catalog.Config, brokers []string, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ex, "floe.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["catalog"] = map[string]any{"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse}
	cfg["metrics-address"] = "off"
	cfg["run"] = map[string]any{"compaction": false}
	for _, src := range cfg["sources"].([]any) {
		k := src.(map[string]any)["kafka"].(map[string]any)
		k["brokers"] = brokers
		k["group"] = fmt.Sprint(k["group"]) + "-" + prefix
		k["session-timeout"], k["heartbeat-interval"], k["rebalance-timeout"], k["fetch-max-wait"] = "3s", "300ms", "20s", "100ms"
		for _, r := range k["routes"].([]any) {
			route := r.(map[string]any)
			var topics []string
			for _, tp := range route["topics"].([]any) {
				topics = append(topics, prefix+"."+strings.TrimPrefix(fmt.Sprint(tp), "shop."))
			}
			route["topics"] = topics
		}
	}
	var transforms, aggregations []any
	for _, s := range warehouseSpecs {
		switch {
		case s.kind == "transform":
			transforms = append(transforms, map[string]any{"spec": filepath.Join(ex, s.file), "output": s.output})
		case strings.HasSuffix(s.file, ".sql"):
			aggregations = append(aggregations, map[string]any{"spec": filepath.Join(ex, s.file), "output": s.output,
				"name": s.output[strings.IndexByte(s.output, '.')+1:]})
		default:
			aggregations = append(aggregations, map[string]any{"spec": filepath.Join(ex, s.file)})
		}
	}
	cfg["transforms"], cfg["aggregations"] = transforms, aggregations
	return writeFloeYAML(t, dir, cfg)
}

// specWithOutput writes a copy of the YAML spec file (relative to ex)
// into dir with its output set to output, and returns its path.
func specWithOutput(t *testing.T, ex, dir, file, output string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ex, file))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec["output"] = output
	if name, ok := spec["name"].(string); ok {
		spec["name"] = name + "_backfill"
	}
	out, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, strings.ReplaceAll(file, "/", "_")+".backfill.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// warehouseLag says what has not caught up yet: an ODS table that does
// not hold the replay's rows (the change log: its count), a spec whose
// cursor is not its source's current snapshot; "" when all have.
func warehouseLag(cat icecat.Catalog, want map[string][]string, wantLog int) string {
	var lag []string
	for name, rows := range want {
		got, err := cdcIcebergRows(cat, name)
		if err != nil {
			lag = append(lag, err.Error())
		} else if !slices.Equal(got, rows) {
			lag = append(lag, fmt.Sprintf("%s holds %d rows, the replay %d", name, len(got), len(rows)))
		}
	}
	if got, err := cdcIcebergRows(cat, "ods.orders_changes"); err != nil {
		lag = append(lag, err.Error())
	} else if len(got) != wantLog {
		lag = append(lag, fmt.Sprintf("ods.orders_changes holds %d rows, want %d", len(got), wantLog))
	}
	for _, s := range warehouseSpecs {
		src, out := loadTableErr(cat, s.source), loadTableErr(cat, s.output)
		if src == nil || out == nil {
			lag = append(lag, s.output+": not created yet")
			continue
		}
		pm, err := table.CurrentPositions(out)
		if err != nil {
			lag = append(lag, err.Error())
			continue
		}
		cur, found := reader.CursorFromPositions(pm, s.source)
		if snap := src.CurrentSnapshot(); !found || snap == nil || cur != snap.SnapshotID {
			lag = append(lag, fmt.Sprintf("%s: cursor %d (found %v), %s at %v", s.output, cur, found, s.source, snapshotIDOf(src.CurrentSnapshot())))
		}
	}
	return strings.Join(lag, "; ")
}

// shortCells cuts the cells of canonical rows (cells joined by " | ")
// longer than 40 characters, for a readable diff.
func shortCells(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		cells := strings.Split(r, " | ")
		for j, c := range cells {
			if len(c) > 40 {
				cells[j] = fmt.Sprintf("%s…(%d chars)", c[:24], len(c))
			}
		}
		out[i] = strings.Join(cells, " | ")
	}
	return out
}

// countIn counts the lines of file holding s.
func countIn(file, s string) int {
	b, _ := os.ReadFile(file)
	return strings.Count(string(b), s)
}

// startFloeCmd starts `floe args...` in dir, logging to dir/name.log.
func startFloeCmd(t testing.TB, bin, dir, name string, args ...string) *floeProc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &floeProc{name: name, cmd: cmd, exit: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.exit)
	}()
	return p
}

// enginesPython is the engines venv's python: FLOE_ENGINES_PYTHON, else
// the venv `integration/engines/setup.sh python` installs (named by the
// hash of its pins, as the script names it); "" without one.
func enginesPython(root string) string {
	if p := os.Getenv("FLOE_ENGINES_PYTHON"); p != "" {
		return p
	}
	cache := os.Getenv("FLOE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache", "floe")
	}
	h := sha256.New()
	for _, f := range []string{"requirements.txt", "constraints.txt"} {
		b, err := os.ReadFile(filepath.Join(root, "integration", "engines", f))
		if err != nil {
			return ""
		}
		h.Write(b)
	}
	venv := filepath.Join(cache, "venv-engines-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(venv, ".complete")); err != nil {
		return ""
	}
	return filepath.Join(venv, "bin", "python")
}

func snapshotIDOf(s *icetable.Snapshot) any {
	if s == nil {
		return "no snapshot"
	}
	return s.SnapshotID
}
