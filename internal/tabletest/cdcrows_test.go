package tabletest

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestDiffRows(t *testing.T) {
	tests := []struct {
		name      string
		want, got []string
		says      []string // substrings of the description; none: equal
	}{
		{"equal", []string{"1 | a", "2 | b"}, []string{"1 | a", "2 | b"}, nil},
		{"both empty", nil, []string{}, nil},
		{"missing", []string{"1 | a", "2 | b"}, []string{"1 | a"}, []string{"MySQL has 2 rows, Iceberg 1", "missing in Iceberg: 2 | b"}},
		{"duplicate", []string{"1 | a"}, []string{"1 | a", "1 | a"}, []string{"extra in Iceberg (x1): 1 | a"}},
		{"changed", []string{"1 | a"}, []string{"1 | b"}, []string{"missing in Iceberg: 1 | a", "extra in Iceberg (x1): 1 | b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := DiffRows(tc.want, tc.got)
			if len(tc.says) == 0 && d != "" {
				t.Fatalf("DiffRows = %q, want empty", d)
			}
			for _, s := range tc.says {
				if !strings.Contains(d, s) {
					t.Errorf("DiffRows = %q, want it to say %q", d, s)
				}
			}
		})
	}
}

func TestCanonicalBinary(t *testing.T) {
	b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
	defer b.Release()
	b.Append([]byte{0x01, 0x02})
	b.AppendNull()
	a := b.NewArray()
	defer a.Release()
	bit := arrow.NewMetadata([]string{"doc"}, []string{"mysql bit(16)"})
	tests := []struct {
		name string
		i    int
		md   arrow.Metadata
		want string
	}{
		{"binary as hex", 0, arrow.Metadata{}, "0102"},
		{"bit as its number", 0, bit, "258"},
		{"null", 1, bit, "NULL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonical(a, tc.i, tc.md); got != tc.want {
				t.Errorf("canonical = %q, want %q", got, tc.want)
			}
		})
	}
}
