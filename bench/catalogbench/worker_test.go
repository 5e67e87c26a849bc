package main

import (
	"slices"
	"testing"
	"time"
)

// Writers split the tables between them; with fewer tables than writers,
// they share.
func TestMyTables(t *testing.T) {
	cases := []struct {
		tables, writers, index int
		want                   []string
	}{
		{1, 1, 0, []string{"ns.t0000"}},
		{1, 4, 3, []string{"ns.t0000"}},
		{2, 4, 3, []string{"ns.t0001"}},
		{5, 2, 0, []string{"ns.t0000", "ns.t0002", "ns.t0004"}},
		{5, 2, 1, []string{"ns.t0001", "ns.t0003"}},
	}
	for _, c := range cases {
		got := myTables(workerArgs{Namespace: "ns", Tables: c.tables, Writers: c.writers, Index: c.index})
		if !slices.Equal(got, c.want) {
			t.Errorf("%d tables, %d writers, writer %d: %v, want %v", c.tables, c.writers, c.index, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	d := []int{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	var ds []time.Duration
	for _, v := range d {
		ds = append(ds, time.Duration(v))
	}
	if got := percentile(ds, 50); got != 6 {
		t.Errorf("p50 = %d, want 6", got)
	}
	if got := percentile(ds, 99); got != 10 {
		t.Errorf("p99 = %d, want 10", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %d", got)
	}
}
