package reader_test

import (
	"errors"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/reader"
)

func TestParseFilter(t *testing.T) {
	ref := func(s string) iceberg.Reference { return iceberg.Reference(s) }
	tests := []struct {
		in   string
		want iceberg.BooleanExpression
	}{
		{"", iceberg.AlwaysTrue{}},
		{"id = 5", iceberg.EqualTo(ref("id"), int64(5))},
		{"  id!=-5 ", iceberg.NotEqualTo(ref("id"), int64(-5))},
		{"amount >= 1.5e3", iceberg.GreaterThanEqual(ref("amount"), 1500.0)},
		{"x < 1_000", iceberg.LessThan(ref("x"), int64(1000))},
		{"name <= 'O''Brien'", iceberg.LessThanEqual(ref("name"), "O'Brien")},
		{`device.os > "ios"`, iceberg.GreaterThan(ref("device.os"), "ios")},
		{"ok = true", iceberg.EqualTo(ref("ok"), true)},
		{"name = null", iceberg.IsNull(ref("name"))},
		{"name != NULL", iceberg.NotNull(ref("name"))},
		{"a = 1 AND b = 'x' and c > 2.5", iceberg.NewAnd(
			iceberg.EqualTo(ref("a"), int64(1)), iceberg.EqualTo(ref("b"), "x"), iceberg.GreaterThan(ref("c"), 2.5))},
		{"ts >= '2026-01-01T00:00:00Z'", iceberg.GreaterThanEqual(ref("ts"), "2026-01-01T00:00:00Z")},
	}
	for _, tt := range tests {
		got, err := reader.ParseFilter(tt.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.in, err)
			continue
		}
		if !got.Equals(tt.want) {
			t.Errorf("ParseFilter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{
		"id", "id =", "= 5", "id = 5 or b = 1", "id = 5 and", "id ! 5", "id = 'x", "id = abc",
		"id < null", "id = 5 5", "id == 5x",
	} {
		if _, err := reader.ParseFilter(bad); !errors.Is(err, reader.ErrInvalidFilter) {
			t.Errorf("ParseFilter(%q): %v, want ErrInvalidFilter", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []reader.Config{
		{Mode: "upsert"},
		{Concurrency: -1},
		{PollInterval: 1},
		{Columns: []string{"a", " "}},
		{BatchSize: -1},
		{EventTime: &reader.TimeRange{}},
		{EventTime: &reader.TimeRange{Column: "ts", Start: day0, End: day0}},
	} {
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v is valid", cfg)
		}
	}
	cfg := reader.Config{}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := reader.New(nil, "nodot", reader.Config{}); err == nil {
		t.Fatal("a table name without a namespace is accepted")
	}
}

// FuzzParseFilter: any input parses or fails with ErrInvalidFilter, never
// panics.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"id = 5", "a >= 'x' and b != null", "id == 5", "x <> 1", "'", "a = -", "a = 1e", "é = 'ü'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := reader.ParseFilter(s)
		if err != nil && !errors.Is(err, reader.ErrInvalidFilter) {
			t.Fatalf("ParseFilter(%q): %v is not ErrInvalidFilter", s, err)
		}
		if err == nil && e == nil {
			t.Fatalf("ParseFilter(%q): nil expression", s)
		}
	})
}
