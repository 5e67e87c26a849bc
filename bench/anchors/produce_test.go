package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every record is recordBytes long, valid JSON, and every field is a
// column of the table both systems write.
func TestClickJSON(t *testing.T) {
	cols := map[string]bool{}
	for _, f := range tableSpec().Schema {
		cols[f.Name] = true
	}
	for _, seq := range []int64{0, 1, 2, 5, 49, 999999, 1234567} {
		v := clickJSON(seq)
		if len(v) != recordBytes {
			t.Errorf("record %d: %d bytes, want %d: %s", seq, len(v), recordBytes, v)
		}
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatalf("record %d: %v: %s", seq, err, v)
		}
		for k := range m {
			if !cols[k] {
				t.Errorf("record %d: field %q is not a column", seq, k)
			}
		}
		if u, _ := m["page_url"].(string); !strings.HasPrefix(u, "https://shop.example.com/") {
			t.Errorf("record %d: page_url %q", seq, u)
		}
	}
}
