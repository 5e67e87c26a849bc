package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// workerArgs tell one writer process what to do.
type workerArgs struct {
	Catalog   catalog.Config `json:"catalog"`
	Namespace string         `json:"namespace"`
	Tables    int            `json:"tables"`
	Index     int            `json:"index"`
	Writers   int            `json:"writers"`
	Duration  time.Duration  `json:"duration"`
}

// workerResult is what a writer process reports on stdout.
type workerResult struct {
	Latencies  []time.Duration `json:"latencies"`
	Conflicts  int             `json:"conflicts"`
	Errors     int             `json:"errors"`
	FirstError string          `json:"first_error,omitempty"`
}

// tableName is table i of a namespace.
func tableName(ns string, i int) string { return fmt.Sprintf("%s.t%04d", ns, i) }

// tinySpec is the table every commit appends one row to.
func tinySpec(name string) table.Spec {
	return table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
}

// myTables are the tables writer index of writers commits to: every
// writers-th table from index, or, with fewer tables than writers, table
// index mod tables (then several writers share a table).
func myTables(a workerArgs) []string {
	var out []string
	if a.Tables < a.Writers {
		return []string{tableName(a.Namespace, a.Index%a.Tables)}
	}
	for i := a.Index; i < a.Tables; i += a.Writers {
		out = append(out, tableName(a.Namespace, i))
	}
	return out
}

// runWorker opens its tables, prints "ready", waits for a line on stdin,
// then commits one-row appends round-robin over its tables for the
// duration, and prints its workerResult as JSON.
func runWorker(ctx context.Context, log *slog.Logger, raw string) error {
	var a workerArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return fmt.Errorf("decode worker arguments: %w", err)
	}
	cat, err := catalog.Open(ctx, a.Catalog)
	if err != nil {
		return fmt.Errorf("open catalog: %w", err)
	}
	source := fmt.Sprintf("w%02d", a.Index)
	names := myTables(a)
	var res workerResult
	var w *writer.Writer
	recs := map[string]arrow.RecordBatch{}
	open := func() error {
		w = writer.New(cat, writer.Config{CommitInterval: time.Hour, WriterID: source}, writer.Options{
			Logger:   log,
			OnCommit: func(ci writer.CommitInfo) { res.Conflicts += ci.Conflicts },
		})
		for _, n := range names {
			_, sc, err := w.Open(n, source)
			if err != nil {
				return fmt.Errorf("open table %s: %w", n, err)
			}
			if recs[n] == nil {
				recs[n] = oneRow(sc)
			}
		}
		return nil
	}
	if err := open(); err != nil {
		return err
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("wait for the start: %w", err)
	}
	end := time.Now().Add(a.Duration)
	seq := map[string]int64{}
	for i := 0; time.Now().Before(end); i++ {
		n := names[i%len(names)]
		seq[n]++
		rec := recs[n]
		rec.Retain()
		start := time.Now()
		err := w.Write(writer.Batch{Table: n, Source: source, Record: rec, Next: table.Positions{"p": seq[n]}})
		if err == nil {
			err = w.Commit(ctx)
		}
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			w.Abort()
			if err := open(); err != nil {
				return err
			}
			continue
		}
		res.Latencies = append(res.Latencies, time.Since(start))
	}
	w.Abort()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// oneRow is a one-row record of the tiny table's schema.
func oneRow(sc *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(1)
	b.Field(1).(*array.StringBuilder).Append("x")
	return b.NewRecordBatch()
}
