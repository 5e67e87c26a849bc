package table

import (
	"context"
	"errors"
	"testing"

	"github.com/floe-lake/floe/internal/tabletest"
)

// TestEnsureMarksIncompatibleChanges: a change Ensure cannot apply is
// ErrIncompatibleSchema (so a daemon can halt on it), with its message
// unchanged; a catalog error is not.
func TestEnsureMarksIncompatibleChanges(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	base := Spec{Name: "ods.t", Schema: []Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	if _, err := Ensure(ctx, cat, base); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		schema []Field
		want   bool
	}{
		{"type change", []Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "int"}}, true},
		{"new required column", []Field{{Name: "id", Type: "long", Required: true}, {Name: "w", Type: "int", Required: true}}, true},
		{"new optional column", []Field{{Name: "id", Type: "long", Required: true}, {Name: "w", Type: "int"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Schema = tc.schema
			_, err := Ensure(ctx, cat, s)
			if got := errors.Is(err, ErrIncompatibleSchema); got != tc.want {
				t.Fatalf("Ensure: %v; ErrIncompatibleSchema %v, want %v", err, got, tc.want)
			}
			if tc.want && err.Error() == ErrIncompatibleSchema.Error() {
				t.Error("the mark replaced the message")
			}
		})
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Ensure(ctxDone, cat, base); err == nil || errors.Is(err, ErrIncompatibleSchema) {
		t.Errorf("Ensure with a cancelled context: %v", err)
	}
}
