package mysql

import (
	"os"
	"regexp"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/writer"
)

// exampleConfig reads the mysql section of examples/cdc/floe.yaml.
func exampleConfig(t *testing.T) Config {
	t.Helper()
	b, err := os.ReadFile("../../examples/cdc/floe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Sources []struct {
			Type  string `yaml:"type"`
			MySQL Config `yaml:"mysql"`
		} `yaml:"sources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Sources) != 1 || f.Sources[0].Type != "mysql" {
		t.Fatalf("examples/cdc/floe.yaml: want one mysql source, got %+v", f.Sources)
	}
	return f.Sources[0].MySQL
}

func TestExampleConfigValid(t *testing.T) {
	cfg := exampleConfig(t)
	cfg.DSN = "root@tcp(127.0.0.1:13306)/"
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestExamples runs examples/cdc end to end: the dwshow and shop schemas
// and rows are captured, then changes.sql (cross-table transactions,
// deletes, upserts and schema changes) lands exactly.
func TestExamples(t *testing.T) {
	dsn := mariaDSN(t)
	dw, dwName := testDB(t, dsn)
	shop, shopName := testDB(t, dsn)
	rename := func(file string) string {
		b, err := os.ReadFile("../../examples/cdc/" + file)
		if err != nil {
			t.Fatal(err)
		}
		s := regexp.MustCompile(`\bdwshow\b`).ReplaceAllString(string(b), dwName)
		return regexp.MustCompile(`\bshop\b`).ReplaceAllString(s, shopName)
	}
	mustExec(t, dw, rename("dwshow.sql"))
	mustExec(t, shop, rename("shop.sql"))
	cfg := exampleConfig(t)
	cfg.DSN = dsn
	cfg.BatchDelay = 50 * time.Millisecond
	cfg.Include = []string{dwName + `\.ad_show`, shopName + `\..*`}
	cat := tabletest.OpenSQLite(t)
	src, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	check := func() {
		waitEqual(t, dw, dwName, "ad_show", cat, dwName+".ad_show", 30*time.Second)
		for _, tbl := range []string{"users", "orders", "order_items"} {
			waitEqual(t, shop, shopName, tbl, cat, shopName+"."+tbl, 30*time.Second)
		}
	}
	check()
	mustExec(t, shop, rename("changes.sql"))
	check()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
