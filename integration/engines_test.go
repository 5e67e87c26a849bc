//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
)

// The engines matrix: Floe writes every table state it produces
// (integration/engines/mkstates) into each catalog — SQLite, PostgreSQL,
// the Iceberg REST fixture — on the local warehouse and on MinIO, and each
// external engine (PyIceberg, DuckDB, Spark) reads every table through the
// catalog and must return row for row what Floe's own reader (an iceberg-go
// scan) returns, and the same rows for a filter that partition pruning
// decides. The other way round, Spark and PyIceberg write tables (appends,
// row-level deletes and updates, schema changes) that Floe's reader must
// read as they do.
//
// It needs the engines (integration/engines/setup.sh install), MinIO,
// PostgreSQL (integration/engines/postgres.sh start) and the REST fixture
// (integration/engines/rest.sh start); `make test-integration` installs and
// starts all of them. A missing one fails the test with the script to run.
// FLOE_ENGINES=pyiceberg,duckdb limits the engines, FLOE_ENGINES_CATALOGS
// the catalog/warehouse pairs (e.g. sqlite-local).

// engineCatalog is one catalog + warehouse pair of the matrix.
type engineCatalog struct {
	name    string
	cfg     catalog.Config
	readers []string // engines reading Floe's tables
	writers []string // engines writing tables for Floe to read
}

// engineKnownIssue is an engine's documented deviation from Floe's rows for a
// state. skip: the engine cannot read the table at all (its error must
// contain match); adjust: the engine's rows differ from Floe's in a known
// way, applied to Floe's expected rows before the comparison, which stays
// exact for everything else.
type engineKnownIssue struct {
	why    string
	match  string
	adjust func(row map[string]any)
}

var engineKnownIssues = map[string]engineKnownIssue{
	"pyiceberg/cdc_equality": {
		why:   "PyIceberg 0.12 cannot read equality deletes (apache/iceberg#6568); DuckDB, Spark and iceberg-go can",
		match: "does not yet support equality deletes",
	},
	"pyiceberg/nested": {
		why: "PyIceberg 0.12 reads a null list<struct> as an empty list (apache/iceberg-python#3833); the Parquet file holds a null, which DuckDB, Spark and iceberg-go read",
		adjust: func(row map[string]any) {
			if row["items"] == nil {
				row["items"] = []any{}
			}
		},
	},
	"spark/time_of_day": {
		why:   "Spark has no TIME type: Iceberg's Spark runtime refuses tables with a time column",
		match: "Spark does not support time fields",
	},
}

func TestEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("engines matrix: not under -short")
	}
	env := enginesEnv(t)
	mk := buildMkstates(t)
	for _, ec := range engineCatalogs(t) {
		t.Run(ec.name, func(t *testing.T) {
			dir := t.TempDir()
			ns := "floe_" + enginesRandHex(t, 4)
			floeOut := filepath.Join(dir, "floe")
			start := time.Now()
			enginesRun(t, mk, mkstatesArgs("write", ec.cfg, "-ns", ns, "-out", floeOut)...)
			t.Logf("Floe wrote the states into %s namespace %s in %s", ec.name, ns, time.Since(start).Round(time.Millisecond))
			man := enginesManifest(t, filepath.Join(floeOut, "manifest.json"))
			catJSON := enginesPythonCatalog(t, ec.cfg)
			for _, engine := range ec.readers {
				if !env.wants(engine) {
					continue
				}
				writes := slices.Contains(ec.writers, engine)
				wout := filepath.Join(dir, "written-by-"+engine)
				t.Run("read/"+engine, func(t *testing.T) {
					out := filepath.Join(dir, engine)
					args := []string{"--engine", engine, "--catalog", catJSON, "--out", out}
					if writes {
						// The other direction runs in the same engine session.
						args = append(args, "--write-namespace", ns+"_w"+engine, "--write-out", wout)
					}
					for _, e := range man.Tables {
						arg := e.Table
						if e.Filter != nil {
							arg += ":" + string(e.Filter)
						}
						args = append(args, arg)
					}
					start := time.Now()
					env.python(t, "read.py", args...)
					t.Logf("%s read %d tables (and wrote its own: %v) in %s", engine, len(man.Tables), writes, time.Since(start).Round(time.Millisecond))
					for _, e := range man.Tables {
						t.Run(e.State, func(t *testing.T) {
							ki, known := engineKnownIssues[strings.TrimSuffix(engine, "-rest")+"/"+e.State]
							if errText, err := os.ReadFile(filepath.Join(out, e.Table+".error")); err == nil {
								if known && ki.match != "" && strings.Contains(string(errText), ki.match) {
									t.Skipf("known limitation: %s", ki.why)
								}
								t.Fatalf("%s failed to read %s (%s): %s", engine, e.Table, e.Notes, errText)
							}
							var adjust func(map[string]any)
							if known && ki.adjust != nil {
								adjust = ki.adjust
								t.Logf("known deviation, compared with it applied: %s", ki.why)
							}
							enginesCompare(t, filepath.Join(floeOut, e.Table+".jsonl"), filepath.Join(out, e.Table+".jsonl"), adjust, engine)
							if e.Filter != nil {
								enginesCompare(t, filepath.Join(floeOut, e.Table+".filter.jsonl"), filepath.Join(out, e.Table+".filter.jsonl"), adjust, engine+" (filter "+string(e.Filter)+")")
							}
						})
					}
				})
				if !writes {
					continue
				}
				t.Run("write/"+engine, func(t *testing.T) {
					wm := enginesManifest(t, filepath.Join(wout, "manifest.json"))
					floeView := filepath.Join(wout, "floe")
					args := mkstatesArgs("dump", ec.cfg, "-out", floeView)
					for _, e := range wm.Tables {
						args = append(args, e.Table)
					}
					enginesRun(t, mk, args...)
					for _, e := range wm.Tables {
						t.Run(e.State, func(t *testing.T) {
							enginesCompare(t, filepath.Join(wout, e.Table+".jsonl"), filepath.Join(floeView, e.Table+".jsonl"), nil, "Floe reading what "+engine+" wrote ("+e.Notes+")")
						})
					}
				})
			}
		})
	}
}

// enginesEnv is what integration/engines/setup.sh installed.
type enginesEnvT struct {
	dir    string
	vars   []string
	only   map[string]bool
	python func(t *testing.T, script string, args ...string)
}

func (e *enginesEnvT) wants(engine string) bool {
	return e.only == nil || e.only[engine] || e.only[strings.TrimSuffix(engine, "-rest")]
}

func enginesEnv(t *testing.T) *enginesEnvT {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "integration", "engines")
	cmd := exec.Command("bash", filepath.Join(dir, "setup.sh"), "env")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the external engines are not installed: run integration/engines/setup.sh install (or make test-integration): %v\n%s", err, stderr.String())
	}
	e := &enginesEnvT{dir: dir}
	var pythonBin string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv := strings.TrimPrefix(line, "export ")
		e.vars = append(e.vars, kv)
		if v, ok := strings.CutPrefix(kv, "FLOE_ENGINES_PYTHON="); ok {
			pythonBin = v
		}
	}
	if v := os.Getenv("FLOE_ENGINES"); v != "" {
		e.only = map[string]bool{}
		for _, s := range strings.Split(v, ",") {
			e.only[strings.TrimSpace(s)] = true
		}
	}
	e.python = func(t *testing.T, script string, args ...string) {
		t.Helper()
		cmd := exec.Command(pythonBin, append([]string{filepath.Join(dir, script)}, args...)...)
		cmd.Env = append(os.Environ(), e.vars...)
		enginesRunLogged(t, cmd)
	}
	return e
}

func buildMkstates(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mkstates")
	cmd := exec.Command("go", "build", "-o", bin, "./engines/mkstates")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./integration/engines/mkstates: %v\n%s", err, out)
	}
	return bin
}

// engineCatalogs are the catalog/warehouse pairs of the matrix, each with a
// fresh SQLite file, warehouse directory or bucket; PostgreSQL and REST are
// shared servers, so the test uses a fresh namespace in them.
func engineCatalogs(t *testing.T) []engineCatalog {
	t.Helper()
	dir := t.TempDir()
	s3 := testenv.MinIO(t)
	s3cfg := catalog.S3Config{Endpoint: s3.Endpoint, Region: "us-east-1", AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}
	pgDSN := os.Getenv("FLOE_PG_DSN")
	if pgDSN == "" {
		t.Fatal("PostgreSQL is not running: start it with `eval $(integration/engines/postgres.sh start)` (or run make test-integration); FLOE_PG_DSN is not set")
	}
	restURI, restWH := os.Getenv("FLOE_REST_URI"), os.Getenv("FLOE_REST_WAREHOUSE")
	restS3URI, restS3WH := os.Getenv("FLOE_REST_S3_URI"), os.Getenv("FLOE_REST_S3_WAREHOUSE")
	if restURI == "" || restS3URI == "" {
		t.Fatal("the Iceberg REST fixture is not running (both instances, the s3 one started with MinIO's FLOE_S3_* set): start it with `eval $(integration/engines/rest.sh start)` (or run make test-integration)")
	}
	// A Spark session costs 30 s to minutes on two shared cores: Spark reads
	// through the SQLite and PostgreSQL JDBC catalogs and through REST on
	// MinIO, and writes through SQLite and REST on MinIO (writers must be
	// readers: both run in one engine session).
	all := []string{"pyiceberg", "duckdb", "spark"}
	cats := []engineCatalog{
		{name: "sqlite-local", cfg: catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "sqlite-local", "catalog.db"), Warehouse: filepath.Join(dir, "sqlite-local", "warehouse")},
			readers: all, writers: []string{"pyiceberg", "spark"}},
		{name: "sqlite-minio", cfg: catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "sqlite-minio", "catalog.db"), Warehouse: "s3://" + s3.Bucket(t) + "/wh", S3: s3cfg},
			readers: []string{"pyiceberg", "duckdb"}, writers: []string{"pyiceberg"}},
		{name: "postgres-local", cfg: catalog.Config{Type: catalog.TypePostgres, Name: "floe", URI: pgDSN, Warehouse: filepath.Join(dir, "postgres-local", "warehouse")},
			readers: all, writers: []string{"pyiceberg"}},
		{name: "rest-local", cfg: catalog.Config{Type: catalog.TypeREST, Name: "floe", URI: restURI, Warehouse: restWH},
			readers: []string{"pyiceberg", "duckdb", "duckdb-rest"}, writers: []string{"pyiceberg"}},
		{name: "rest-minio", cfg: catalog.Config{Type: catalog.TypeREST, Name: "floe", URI: restS3URI, Warehouse: restS3WH, S3: s3cfg},
			readers: []string{"pyiceberg", "duckdb", "duckdb-rest", "spark"}, writers: []string{"pyiceberg", "spark"}},
	}
	if v := os.Getenv("FLOE_ENGINES_CATALOGS"); v != "" {
		var sel []engineCatalog
		for _, c := range cats {
			if strings.Contains(","+v+",", ","+c.name+",") {
				sel = append(sel, c)
			}
		}
		cats = sel
	}
	// The REST fixture's bucket is not created by the fixture.
	for _, c := range cats {
		if c.cfg.IsS3() {
			if err := catalog.EnsureBucket(context.Background(), c.cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	return cats
}

func mkstatesArgs(cmd string, cc catalog.Config, more ...string) []string {
	return append([]string{cmd, "-catalog-type", cc.Type, "-catalog-name", cc.Name, "-catalog-uri", cc.URI, "-warehouse", cc.Warehouse}, more...)
}

// enginesPythonCatalog is the catalog JSON integration/engines/canon.py reads.
func enginesPythonCatalog(t *testing.T, cc catalog.Config) string {
	t.Helper()
	wh, err := cc.WarehouseURL()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": wh})
	return string(b)
}

type enginesManifestT struct {
	Tables []struct {
		Table  string          `json:"table"`
		State  string          `json:"state"`
		Notes  string          `json:"notes"`
		Filter json.RawMessage `json:"filter"`
	} `json:"tables"`
}

func enginesManifest(t *testing.T, path string) enginesManifestT {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m enginesManifestT
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := range m.Tables {
		if string(m.Tables[i].Filter) == "null" {
			m.Tables[i].Filter = nil
		}
	}
	return m
}

// enginesCompare compares two canonical dumps as multisets of rows, after
// normalising numbers (1, 1.0 and 1e0 are one number) and key order.
func enginesCompare(t *testing.T, wantPath, gotPath string, adjust func(map[string]any), who string) {
	t.Helper()
	want, err := enginesReadRows(wantPath, adjust)
	if err != nil {
		t.Fatal(err)
	}
	got, err := enginesReadRows(gotPath, nil)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if len(want) == 0 {
		t.Fatalf("%s: no rows expected: the state is empty", wantPath)
	}
	missing, extra := enginesDiff(want, got)
	if len(missing) == 0 && len(extra) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows, want %d (%d missing, %d unexpected)\n", who, len(got), len(want), len(missing), len(extra))
	for i, r := range missing {
		if i == 5 {
			fmt.Fprintf(&b, "  … %d more missing\n", len(missing)-5)
			break
		}
		fmt.Fprintf(&b, "  want %s\n", r)
	}
	for i, r := range extra {
		if i == 5 {
			fmt.Fprintf(&b, "  … %d more unexpected\n", len(extra)-5)
			break
		}
		fmt.Fprintf(&b, "  got  %s\n", r)
	}
	t.Error(b.String())
}

func enginesReadRows(path string, adjust func(map[string]any)) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read-only
	var rows []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var row map[string]any
		if err := d.Decode(&row); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if adjust != nil {
			adjust(row)
		}
		b, err := json.Marshal(enginesNormNumbers(row))
		if err != nil {
			return nil, err
		}
		rows = append(rows, string(b))
	}
	sort.Strings(rows)
	return rows, sc.Err()
}

// enginesNormNumbers rewrites every JSON number in its shortest float64 form.
func enginesNormNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		f, err := x.Float64()
		if err != nil {
			return x
		}
		if f == float64(int64(f)) && f < 1<<53 && f > -(1<<53) {
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case map[string]any:
		for k, e := range x {
			x[k] = enginesNormNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = enginesNormNumbers(e)
		}
	}
	return v
}

// enginesDiff returns the rows of want missing from got and the rows of
// got not in want; both inputs are sorted.
func enginesDiff(want, got []string) (missing, extra []string) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			missing = append(missing, want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

func enginesRun(t *testing.T, bin string, args ...string) {
	t.Helper()
	enginesRunLogged(t, exec.Command(bin, args...))
}

// enginesRunLogged runs cmd and fails the test with its output when it fails.
func enginesRunLogged(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args[:min(len(cmd.Args), 3)], " "), err, testenv.LastLines(out.Bytes(), 60))
	}
	if testing.Verbose() {
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.HasPrefix(l, "mkstates:") || strings.HasPrefix(l, "read.py:") || strings.HasPrefix(l, "write.py:") {
				t.Log(l)
			}
		}
	}
}

func enginesRandHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
