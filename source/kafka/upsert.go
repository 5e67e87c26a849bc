package kafka

// Upsert routes (mode: upsert): their tables are written through
// writer.KeyedTable, the keyed path the MySQL source uses. The package
// comment (Upserts) says what each kind of record does.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/internal/promx"
	"github.com/floe-lake/floe/source/jsonrow"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// keyedPositionCommitInterval is how long an upsert table's positions may
// move without a row change before they are committed alone
// (writer.KeyedOptions.PositionCommitInterval).
const keyedPositionCommitInterval = time.Minute

// upsertMetrics are the metrics of upsert routes.
type upsertMetrics struct {
	changes        *prometheus.CounterVec // table, op
	unknownDeletes *prometheus.CounterVec // table
	statements     *prometheus.CounterVec // table, action
}

func newUpsertMetrics(reg prometheus.Registerer, id string) (*upsertMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"source": id}, reg)
	f := promx.With(nil) // registered below
	m := &upsertMetrics{
		changes:        f.CounterVec("floe_kafka_upsert_changes_total", "Row changes applied to upsert tables, by table and op (upsert, delete).", "table", "op"),
		unknownDeletes: f.CounterVec("floe_kafka_upsert_unknown_key_deletes_total", "Deletes of keys an upsert table did not hold (no-ops), by table.", "table"),
		statements:     f.CounterVec("floe_kafka_upsert_statements_total", "Canal DDL messages and Debezium truncates for upsert tables, by table and action (skipped, halted).", "table", "action"),
	}
	for _, c := range []prometheus.Collector{m.changes, m.unknownDeletes, m.statements} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register kafka upsert metrics of source %s: %w", id, err)
		}
	}
	return m, nil
}

// checkUpserts checks the declared specs of the upsert routes' tables:
// identifier fields (the key), partitioning by top-level columns only,
// key naming exactly the identifier fields. Errors name the route's setting
// ("kafka.routes[1].mode: ...").
func (s *Source) checkUpserts(byName map[string]table.Spec) error {
	for j, r := range s.cfg.Routes {
		if r.Mode != ModeUpsert {
			continue
		}
		key := fmt.Sprintf("kafka.routes[%d]", j)
		for _, name := range r.tables() {
			spec := byName[name]
			switch {
			case len(spec.IdentifierFields) == 0:
				return fmt.Errorf("%s.mode: upsert needs table %s to have identifier-fields (the key rows are upserted and deleted by); it has none", key, name)
			case slices.ContainsFunc(spec.Partition, func(p table.PartitionField) bool { return strings.Contains(p.Column, ".") }):
				return fmt.Errorf("%s.mode: upsert tables are partitioned by top-level columns; table %s partitions by a nested one", key, name)
			case spec.Properties["format-version"] == "1":
				return fmt.Errorf("%s.mode: upsert needs format-version 2 or later (row-level deletes); table %s sets 1", key, name)
			}
			if len(r.Key) > 0 && !sameSet(r.Key, spec.IdentifierFields) {
				return fmt.Errorf("%s.key: %v are not the identifier fields %v of table %s", key, r.Key, spec.IdentifierFields, name)
			}
		}
	}
	return nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// segKind is the kind of the rows an upsert table collects: a table
// applies the upserts and deletes of a poll together, in their order, in
// one Apply (the KeyedTable counts the deletes that found no key); the
// deletes that clear a dead letter's key go in an Apply of their own, as
// they are not counted.
type segKind uint8

const (
	segNone    segKind = iota
	segChanges         // new images and deletes of the records (counted when the key is unknown)
	segClear           // deletes of keys whose new image is a dead letter
)

// upserts are the upsert tables of a run. The run's goroutine applies
// changes; a revoke callback may commit concurrently (commit), so what
// both touch is guarded by mu.
type upserts struct {
	s      *Source
	ctx    context.Context
	tables map[int]*keyedOut // by table index

	mu sync.Mutex // guards keyedOut.done, .halted (writes), .reported
}

// table returns the upsert table of table index ti, or nil.
func (u *upserts) table(ti int) *keyedOut {
	if u == nil {
		return nil
	}
	return u.tables[ti]
}

// keyedOut is an upsert table in a run.
type keyedOut struct {
	ti   int
	name string
	kt   *writer.KeyedTable
	// up collects the upserted images with their metadata columns (it
	// is also r.out[ti], whose next the partitions' positions go to).
	up *tableOut
	// keys are the key columns (the identifier fields), at keyCols of
	// schema.
	keys    []string
	keyCols []int
	schema  *arrow.Schema
	// keyProbe decodes keys only to check them (discarded); del collects
	// the keys of the deletes, ops the order of the collected upserts (in
	// up) and deletes (in del).
	keyProbe *jsonrow.Builder
	del      *jsonrow.Builder
	seg      segKind
	ops      []writer.Op
	delEvent time.Time
	// halted is the reason the table is not followed; "" if it is.
	halted   string
	err      error
	done     bool            // closed or aborted
	reported table.Positions // positions last passed to Source.OnCommit
}

// openKeyed opens table index ti for upserts on the run's sink.
func (r *run) openKeyed(ctx context.Context, ti int, name string) (*tableOut, error) {
	s := r.s
	if r.ups == nil {
		r.ups = &upserts{s: s, ctx: ctx, tables: map[int]*keyedOut{}}
	}
	kt, err := r.sink.OpenKeyed(ctx, table.Spec{Name: name}, s.cfg.ID,
		writer.KeyedOptions{PositionCommitInterval: keyedPositionCommitInterval})
	if err != nil {
		return nil, fmt.Errorf("open upsert table %s: %w", name, err)
	}
	k := &keyedOut{ti: ti, name: name, kt: kt, schema: kt.Schema(), reported: kt.Positions()}
	r.ups.tables[ti] = k
	sc := kt.IcebergSchema()
	var keyFields []arrow.Field
	for _, id := range sc.IdentifierFieldIDs {
		n, _ := sc.FindColumnName(id)
		idx := slices.IndexFunc(k.schema.Fields(), func(f arrow.Field) bool { return f.Name == n })
		if idx < 0 {
			return nil, fmt.Errorf("open upsert table %s: identifier field %s is not a top-level column", name, n)
		}
		k.keys = append(k.keys, n)
		k.keyCols = append(k.keyCols, idx)
		keyFields = append(keyFields, k.schema.Field(idx))
	}
	opts := decoderOptions(s.cdc[ti])
	md := k.schema.Metadata()
	dec, err := jsonrow.NewDecoder(arrow.NewSchema(keyFields, &md), opts)
	if err != nil {
		return nil, fmt.Errorf("open upsert table %s: %w", name, err)
	}
	k.keyProbe, k.del = dec.NewBuilder(s.mem), dec.NewBuilder(s.mem)
	if k.up, err = newTableOut(s.mem, name, k.schema, opts); err != nil {
		return nil, err
	}
	k.up.next = table.Positions{}
	if reason := kt.Halted(); reason != "" {
		k.halted = reason
		s.log.Error("upsert table halted earlier; its records are skipped until its table property is removed",
			"table", name, "property", writer.PropHalted, "reason", reason)
	}
	return k.up, nil
}

// positions are the upsert table ti's positions of parts, for seek: those
// it committed (a KeyedTable is opened afresh every run), or, for a halted
// table, the end of time: it needs no record.
func (u *upserts) positions(ti int, parts []string) table.Positions {
	k := u.tables[ti]
	out := table.Positions{}
	if k.halted != "" {
		for _, p := range parts {
			out[p] = math.MaxInt64
		}
		return out
	}
	pos := k.kt.Positions()
	for _, p := range parts {
		if v, ok := pos[p]; ok {
			out[p] = v
		}
	}
	return out
}

// commit commits what every upsert table applied (before a revoke).
func (u *upserts) commit(ctx context.Context) error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for _, k := range u.sorted() {
		if k.done || k.halted != "" {
			continue
		}
		if err := k.kt.Commit(ctx); err != nil {
			errs = append(errs, fmt.Errorf("commit %s: %w", k.name, err))
			continue
		}
		u.reportLocked(k)
	}
	return errors.Join(errs...)
}

// close ends the run's upsert tables: after a clean stop (err nil or the
// context's) it commits what they applied, else it drops it.
func (u *upserts) close(ctx context.Context, err error) {
	if u == nil {
		return
	}
	clean := err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err()))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range u.sorted() {
		if k.done {
			continue
		}
		k.done = true
		if !clean || k.err != nil {
			k.kt.Abort()
			continue
		}
		if cerr := k.kt.Close(cctx); cerr != nil {
			u.s.log.Warn("commit of upsert table on shutdown failed; the next run re-reads what it held", "table", k.name, "err", cerr)
			continue
		}
		u.reportLocked(k)
	}
}

// release drops what close did not end and frees the builders.
func (u *upserts) release() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range u.tables {
		if !k.done {
			k.done = true
			k.kt.Abort()
		}
		k.keyProbe.Release()
		k.del.Release()
	}
}

func (u *upserts) sorted() []*keyedOut {
	out := make([]*keyedOut, 0, len(u.tables))
	for _, k := range u.tables {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ti < out[j].ti })
	return out
}

// report passes the positions k committed to Source.OnCommit (group
// offsets, lag and freshness): keyed commits are not observed through
// writer.Sink.ObserveCommits.
func (u *upserts) report(k *keyedOut) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reportLocked(k)
}

func (u *upserts) reportLocked(k *keyedOut) {
	pos := k.kt.Positions()
	if maps.Equal(pos, k.reported) {
		return
	}
	k.reported = pos
	u.s.OnCommit(writer.CommitInfo{Table: k.name, Positions: table.PositionMap{u.s.cfg.ID: pos}})
}

// keyedRecord handles one record of an upsert route: the rows it carries
// are applied in order to the table it routes to, and what cannot be
// applied becomes a dead letter.
func (r *run) keyedRecord(ps *partState, rec *kgo.Record) {
	rt := ps.route
	o := rec.Offset
	needDL := o >= ps.start[len(ps.start)-1]
	msg, err := decodeKeyed(rt.Format, rec.Value)
	if r.undecodable(ps, needDL, rec, err) {
		return
	}
	ti, why := keyedTarget(rt, rec.Value)
	if ti < 0 {
		if msg.stmt == nil {
			r.dead(ps, needDL, rec, "", why)
		}
		return
	}
	k := r.ups.table(ti)
	if k.halted != "" || k.err != nil {
		return
	}
	need := o >= ps.start[rt.slot[ti]]
	if !need && !needDL {
		return
	}
	if msg.stmt != nil {
		if need {
			r.keyedStatement(k, ps, rec, msg.stmt)
		}
		return
	}
	for i := range msg.rows {
		why := r.keyedRow(k, ps, rec, &msg.rows[i], need)
		if why == "" {
			continue
		}
		reason := "table " + k.name + ": " + why
		if len(msg.rows) > 1 {
			reason = fmt.Sprintf("table %s: row %d: %s", k.name, i, why)
		}
		r.dead(ps, needDL, rec, k.name, reason)
	}
}

// keyedTarget is the table index a record of rt goes to, or -1 and why
// none.
func keyedTarget(rt *route, value []byte) (int, string) {
	if rt.Field == "" {
		return rt.def, ""
	}
	v, err := fieldValue(value, rt.Field)
	if err == nil {
		if i, ok := rt.byValue[v]; ok {
			return i, ""
		}
	}
	if rt.def >= 0 {
		return rt.def, ""
	}
	if err != nil {
		return -1, err.Error()
	}
	return -1, fmt.Sprintf("route on %s: no table for %q", rt.Field, v)
}

// keyedRow applies one row of record rec to k (when need; else it only
// checks the row, for the dead-letter table) and returns why it is a dead
// letter, or "".
func (r *run) keyedRow(k *keyedOut, ps *partState, rec *kgo.Record, row *keyedRow, need bool) string {
	o := rec.Offset
	ev := row.eventTime
	if ev.IsZero() {
		ev = rec.Timestamp
	}
	if row.delete() {
		var key []byte
		var err error
		if row.image == nil {
			key, err = recordKey(rec.Key, k.keys)
		} else {
			// A Canal or Debezium delete: the image is from the envelope.
			key, err = envelopeKey(row.image, k.keys)
		}
		if err != nil {
			return "key: " + err.Error()
		}
		b := k.keyProbe
		if need {
			r.segment(k, segChanges, ps, o)
			b = k.del
		}
		if err := b.Append(key); err != nil {
			return "key: " + err.Error()
		}
		if need {
			k.added(ev)
		}
		return ""
	}
	if err := k.keyProbe.Append(row.image); err != nil {
		if _, kerr := rowKey(row.image, k.keys); kerr != nil {
			return "key: " + kerr.Error() // missing or null: say which
		}
		return "key: " + err.Error()
	}
	old, moved, err := previousKey(row, k.keys)
	if err != nil {
		return err.Error()
	}
	if !need {
		if moved {
			if err := k.keyProbe.Append(old); err != nil {
				return "previous key: " + err.Error()
			}
		}
		if err := k.up.probe.Append(row.image); err != nil {
			return err.Error()
		}
		return ""
	}
	if moved {
		// The key changed: the row under the old key goes first.
		r.segment(k, segChanges, ps, o)
		if err := k.del.Append(old); err != nil {
			return "previous key: " + err.Error()
		}
		k.added(ev)
	}
	r.segment(k, segChanges, ps, o)
	if err := k.up.bld.Append(row.image); err != nil {
		// The new image cannot be written: its key's row is deleted, so
		// that the table keeps no stale image of it.
		if key, kerr := rowKey(row.image, k.keys); kerr == nil {
			r.segment(k, segClear, ps, o)
			if k.del.Append(key) == nil {
				k.added(ev)
			}
		}
		return err.Error()
	}
	k.up.appendMeta(rowMeta{rec: rec, op: row.op, eventTime: row.eventTime})
	k.ops = append(k.ops, writer.OpUpsert)
	return ""
}

// added notes a delete just collected.
func (k *keyedOut) added(ev time.Time) {
	k.ops = append(k.ops, writer.OpDelete)
	if ev.After(k.delEvent) {
		k.delEvent = ev
	}
}

// segment makes kind the kind of k's rows, applying the rows collected so
// far when it differs, with the positions reached before offset o of ps —
// or none while dead letters of the poll wait for their commit at its end
// (commitDeadLetters): the rows then wait for the positions of the poll.
func (r *run) segment(k *keyedOut, kind segKind, ps *partState, o int64) {
	if k.seg != kind && len(k.ops) > 0 {
		var next table.Positions
		if r.dlRows == 0 {
			next = k.positionsBefore(ps, o)
		}
		r.applySegment(k, next)
	}
	k.seg = kind
}

// positionsBefore are the positions of the poll up to (not including)
// offset o of ps: the partitions it finished, and o for ps.
func (k *keyedOut) positionsBefore(ps *partState, o int64) table.Positions {
	next := k.up.next.Clone()
	if next == nil {
		next = table.Positions{}
	}
	next[ps.key] = o
	return next
}

// applySegment hands the collected rows of k to its KeyedTable with next
// (nil: positions unchanged), in one Apply. A failure is kept in k.err;
// the run ends with it at its next write.
func (r *run) applySegment(k *keyedOut, next table.Positions) {
	ops, kind := k.ops, k.seg
	k.ops = k.ops[:0] // Apply does not keep ops
	ch := writer.Changes{Next: next, Ops: ops, MaxEventTime: k.delEvent}
	if kind == segChanges {
		ch.Record = k.up.take()
		if k.up.maxEvent.After(ch.MaxEventTime) {
			ch.MaxEventTime = k.up.maxEvent
		}
	}
	if k.del.Len() > 0 {
		ch.Deletes = k.del.NewRecord()
	}
	if k.err != nil {
		for _, rec := range []arrow.RecordBatch{ch.Record, ch.Deletes} {
			if rec != nil {
				rec.Release()
			}
		}
		return
	}
	unknown, err := k.kt.ApplyCounted(ch)
	if err != nil {
		k.err = fmt.Errorf("apply changes to %s: %w", k.name, err)
		return
	}
	dels := 0
	for _, op := range ops {
		if op == writer.OpDelete {
			dels++
		}
	}
	m := r.s.um
	if ups := len(ops) - dels; ups > 0 {
		m.changes.WithLabelValues(k.name, "upsert").Add(float64(ups))
	}
	if dels > 0 {
		m.changes.WithLabelValues(k.name, "delete").Add(float64(dels))
	}
	if kind == segChanges && unknown > 0 {
		m.unknownDeletes.WithLabelValues(k.name).Add(float64(unknown))
	}
}

// writeKeyed applies what the poll left collected for upsert table ti with
// the poll's positions.
func (r *run) writeKeyed(ti int) error {
	k := r.ups.table(ti)
	if k.keyProbe.Len() > 0 {
		k.keyProbe.NewRecord().Release()
	}
	if k.up.probe.Len() > 0 {
		k.up.probe.NewRecord().Release()
	}
	if k.halted != "" {
		k.up.next = table.Positions{}
		return nil
	}
	next, ev := k.up.next, k.up.maxEvent
	if k.delEvent.After(ev) {
		ev = k.delEvent
	}
	if len(k.ops) > 0 || len(next) > 0 {
		p := next
		if len(p) == 0 {
			p = nil
		}
		r.applySegment(k, p)
	}
	if k.err == nil {
		k.err = k.kt.Err()
	}
	if k.err != nil {
		return k.err
	}
	r.s.noteWrite(ti, next, ev)
	k.up.next, k.up.maxEvent, k.delEvent = table.Positions{}, time.Time{}, time.Time{}
	r.ups.report(k)
	return nil
}

// keyedStatement acts on a Canal DDL message or a Debezium truncate for k
// at offset rec.Offset of ps: one that changes the key or removes rows
// without row events halts the table (haltReason); any other is logged
// and skipped.
func (r *run) keyedStatement(k *keyedOut, ps *partState, rec *kgo.Record, st *statement) {
	m := r.s.um
	why := haltReason(st, k.keys)
	if why == "" {
		m.statements.WithLabelValues(k.name, "skipped").Inc()
		r.s.log.Info("skipping a DDL message: the upsert table maps columns by name", "table", k.name,
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "type", st.typ, "sql", abbreviate(st.sql, 300))
		return
	}
	// Everything before the statement is committed with the table's
	// positions at it, after the dead letters before it; the table then
	// stays there.
	if r.dlRows > 0 {
		next := r.dlNext.Clone()
		next[ps.key] = rec.Offset
		if err := r.commitDeadLetters(r.ups.ctx, next); err != nil {
			k.err = err
			return
		}
	}
	r.applySegment(k, k.positionsBefore(ps, rec.Offset))
	if k.err != nil {
		return
	}
	reason := fmt.Sprintf("%s at %s offset %d. To follow the table again, bring it to a state that matches the topic "+
		"(or drop it to have it re-created), then remove its table property %s", why, ps.key, rec.Offset, writer.PropHalted)
	if err := k.kt.Halt(r.ups.ctx, reason); err != nil {
		k.err = fmt.Errorf("halt %s: %w", k.name, err)
		return
	}
	r.ups.mu.Lock()
	k.halted = reason
	r.ups.mu.Unlock()
	k.up.next = table.Positions{}
	r.mu.Lock()
	for _, p := range r.parts {
		if slot, ok := p.route.slot[k.ti]; ok {
			p.start[slot] = math.MaxInt64
		}
	}
	r.mu.Unlock()
	m.statements.WithLabelValues(k.name, "halted").Inc()
	r.s.log.Error("upsert table halted: Floe cannot follow it; the other tables go on", "table", k.name, "reason", reason)
	r.ups.report(k)
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
