package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/table"
)

// States written by appends alone: unpartitioned, partitioned by each
// transform, and compacted (and expired) by Floe's compactor.

func buildAppends(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "name", Type: "string"},
		{Name: "n", Type: "int"},
		{Name: "score", Type: "double"},
		{Name: "ratio", Type: "float"},
		{Name: "ok", Type: "boolean"},
	}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 3; c++ {
		rows := jsonRows(c*40, c*40+40, func(i int) string {
			return fmt.Sprintf(`{"id":%d,"name":%s,"n":%s,"score":%s,"ratio":%s,"ok":%s}`, i,
				nullOr(i, 7, q(fmt.Sprintf("row %d — ü", i))), nullOr(i, 5, strconv.Itoa(i*3-50)),
				nullOr(i, 11, strconv.FormatFloat(float64(i)*1.25-3.5, 'g', -1, 64)),
				nullOr(i, 13, strconv.FormatFloat(float64(i)/3, 'g', -1, 64)),
				nullOr(i, 6, strconv.FormatBool(i%2 == 0)))
		})
		if err := b.appendJSON(ctx, name, rows); err != nil {
			return "", err
		}
	}
	return "3 append snapshots, unpartitioned", nil
}

func buildPartitioned(kind string) func(context.Context, *builder, string) (string, error) {
	return func(ctx context.Context, b *builder, name string) (string, error) {
		var part table.PartitionField
		switch kind {
		case "day":
			part = table.PartitionField{Column: "ts", Transform: "day"}
		case "hour":
			part = table.PartitionField{Column: "ts", Transform: "hour"}
		case "bucket":
			part = table.PartitionField{Column: "id", Transform: "bucket[8]"}
		case "bucket_str":
			part = table.PartitionField{Column: "name", Transform: "bucket[4]"}
		case "truncate":
			part = table.PartitionField{Column: "name", Transform: "truncate[6]"}
		case "truncate_long":
			part = table.PartitionField{Column: "id", Transform: "truncate[10]"}
		}
		_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
			{Name: "v", Type: "decimal(10,2)"},
		}, Partition: []table.PartitionField{part}})
		if err != nil {
			return "", err
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for c := 0; c < 2; c++ {
			rows := jsonRows(c*60, c*60+60, func(i int) string {
				// 120 rows over 4 days, and over 24 hours of the first day.
				var ts time.Time
				if kind == "hour" {
					ts = base.Add(time.Duration(i%24)*time.Hour + time.Duration(i)*time.Second + 123456*time.Microsecond)
				} else {
					ts = base.Add(time.Duration(i%4)*24*time.Hour + time.Duration(i)*time.Minute + 654321*time.Microsecond)
				}
				name := nullOr(i, 17, q(fmt.Sprintf("user-%d", i%30)))
				return fmt.Sprintf(`{"id":%d,"ts":%q,"name":%s,"v":%s}`, i, ts.Format("2006-01-02T15:04:05.000000Z"),
					name, nullOr(i, 9, q(fmt.Sprintf("%d.%02d", i*7-100, i%100))))
			})
			if err := b.appendJSON(ctx, name, rows); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("2 appends, partitioned by %s(%s)", part.Transform, part.Column), nil
	}
}

// buildCompacted writes five small appends over two days and runs Floe's
// compactor (rewrite only) on the table; with expire, it then expires every
// snapshot but the current one, which deletes the files only they held.
func buildCompacted(expire bool) func(context.Context, *builder, string) (string, error) {
	return func(ctx context.Context, b *builder, name string) (string, error) {
		props := map[string]string{}
		if expire {
			props["history.expire.max-snapshot-age-ms"] = "1"
			props["history.expire.min-snapshots-to-keep"] = "1"
		}
		_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
		}, Partition: []table.PartitionField{{Column: "ts", Transform: "day"}}, Properties: props})
		if err != nil {
			return "", err
		}
		base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		for c := 0; c < 5; c++ {
			rows := jsonRows(c*20, c*20+20, func(i int) string {
				ts := base.Add(time.Duration(i%2)*24*time.Hour + time.Duration(i)*time.Second)
				return fmt.Sprintf(`{"id":%d,"ts":%q,"name":%s}`, i, ts.Format(time.RFC3339Nano), nullOr(i, 8, q(fmt.Sprintf("c%d", i))))
			})
			if err := b.appendJSON(ctx, name, rows); err != nil {
				return "", err
			}
		}
		before, err := load(ctx, b.cat, name)
		if err != nil {
			return "", err
		}
		no := false
		cfg := compaction.Config{
			Tables: []string{name}, MinInputFiles: 2,
			ExpireSnapshots: &expire, RemoveOrphanFiles: &no, RewriteManifests: &no,
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		comp, err := compaction.New(b.cat, cfg, compaction.Options{Logger: log,
			// Snapshots are "older than 1 ms" a minute from now.
			Now: func() time.Time { return time.Now().Add(time.Minute) }})
		if err != nil {
			return "", err
		}
		rep, err := comp.Table(ctx, name)
		if err != nil {
			return "", fmt.Errorf("compact: %w", err)
		}
		after, err := load(ctx, b.cat, name)
		if err != nil {
			return "", err
		}
		op := ""
		if s := after.CurrentSnapshot(); s != nil && s.Summary != nil {
			op = string(s.Summary.Operation)
		}
		if rep.FilesRewritten == 0 {
			return "", errors.New("the compactor rewrote no files")
		}
		notes := fmt.Sprintf("5 appends, then Floe's compactor rewrote %d files (current snapshot: %s); snapshots %d → %d",
			rep.FilesRewritten, op, len(before.Metadata().Snapshots()), len(after.Metadata().Snapshots()))
		if expire {
			if rep.SnapshotsExpired == 0 {
				return "", errors.New("the compactor expired no snapshots")
			}
			notes += fmt.Sprintf("; %d snapshots expired, their files deleted", rep.SnapshotsExpired)
		}
		return notes, nil
	}
}
