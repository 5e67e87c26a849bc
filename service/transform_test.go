package service

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/transform"
)

// TestRunTransform: a transforms: entry (a .sql spec with output:) runs
// as a job of floe run, and once the generator is done its output equals
// what floe transform -backfill computes from the same source.
func TestRunTransform(t *testing.T) {
	dir := t.TempDir()
	sql := "SELECT event_time, page_url, user_id FROM ods.events WHERE event_type = 'page_view'"
	if err := os.WriteFile(filepath.Join(dir, "views.sql"), []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := genConfig(t, dir, "transforms:\n  - spec: views.sql\n    output: dwd.views\n")
	s, _ := startService(t, cfg, nil)
	waitFor(t, 60*time.Second, "the generator to finish and the transform to commit", func() bool {
		tj := j(s, "transform/dwd.views")
		return j(s, IngestJob("gen")).State == daemon.StateFinished && !tj.LastProgress.IsZero()
	})
	cat := openCat(t, dir)
	tr, err := transform.New(context.Background(), cat, transform.Spec{SQL: sql, Output: "dwd.check"}, transform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Backfill(context.Background(), transform.BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	want := tableRows(t, cat, "dwd.check")
	if len(want) == 0 {
		t.Fatal("the backfill wrote no row")
	}
	waitFor(t, 30*time.Second, "floe run's transform output to equal the backfill", func() bool {
		return slices.Equal(tableRows(t, cat, "dwd.views"), want)
	})
	if js := j(s, "transform/dwd.views"); js.State != daemon.StateRunning {
		t.Errorf("transform job state %s, want running", js.State)
	}
}
