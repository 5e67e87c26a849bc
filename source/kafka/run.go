package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// run is the state of one Run: the writer it writes to, the tables opened
// on it and the partitions it has seeked.
type run struct {
	s    *Source
	sink writer.Sink

	out    []*tableOut // by table index, the dead-letter table excluded
	ups    *upserts    // the tables of upsert routes (upsert.go)
	dl     *table.DeadLetterBuilder
	dlRows int
	dlNext table.Positions
	// dlSince is when the dead letters waiting for their commit were
	// first held (zero: none); held counts the records read since the
	// polls were last handed to the writer.
	dlSince time.Time
	held    int
	changes []change
	pollN   int // records in the poll being handled

	pollCtx    context.Context
	cancelPoll context.CancelCauseFunc

	mu    sync.Mutex
	parts map[tp]*partState
	err   error // why the run must end (a rebalance), set by callbacks
}

// partState is a partition's progress in a run.
type partState struct {
	t     tp
	key   string
	route *route
	// start[i] is the position of table route.tables[i]: records below
	// it are in that table already (or were not meant for it).
	start []int64
	next  int64 // next offset to handle
	// latest is set when no table had a position and start-offset is
	// latest: the first offset read is remembered for later runs.
	latest bool
	// records counts the partition's records for the metric.
	records, dead prometheus.Counter
}

func (s *Source) open(ctx context.Context, sink writer.Sink) (*run, error) {
	r := &run{s: s, sink: sink, parts: map[tp]*partState{}, dlNext: table.Positions{}}
	ok := false
	defer func() {
		if !ok {
			r.release()
		}
	}()
	for i, name := range s.tables {
		if s.keyed[i] {
			t, err := r.openKeyed(ctx, i, name)
			if err != nil {
				return nil, err
			}
			r.out = append(r.out, t)
			continue
		}
		_, sc, err := sink.Open(name, s.cfg.ID)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		if i == s.dl {
			if r.dl, err = table.NewDeadLetterBuilder(s.mem, name, sc); err != nil {
				return nil, err
			}
			continue
		}
		t, err := newTableOut(s.mem, name, sc, decoderOptions(s.cdc[i]))
		if err != nil {
			return nil, err
		}
		t.next = table.Positions{}
		t.bld.DeferReserve() // sized per poll: see handle
		r.out = append(r.out, t)
	}
	r.pollCtx, r.cancelPoll = context.WithCancelCause(ctx)
	ok = true
	return r, nil
}

func (r *run) release() {
	r.ups.release()
	for _, t := range r.out {
		t.release()
	}
	if r.dl != nil {
		r.dl.Release()
	}
	if r.cancelPoll != nil {
		r.cancelPoll(nil)
	}
}

// fail ends the run with err at its next poll (the first error wins).
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.cancelPoll(err)
}

func (r *run) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *run) drop(tps []tp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range tps {
		delete(r.parts, t)
	}
}

// seek resyncs the positions of tps from their tables through the writer
// and records where each partition's tables stand. It returns the offset
// each partition must be fetched from (-1: the log end, for start-offset
// latest when no table has a position).
func (r *run) seek(ctx context.Context, tps []tp) (map[tp]int64, error) {
	s := r.s
	byTable := map[int][]string{}
	for _, t := range tps {
		rt := s.routes[t.topic]
		if rt == nil {
			return nil, fmt.Errorf("assigned topic %s has no route", t.topic)
		}
		for _, ti := range rt.tables {
			byTable[ti] = append(byTable[ti], t.key())
		}
	}
	tis := make([]int, 0, len(byTable))
	for ti := range byTable {
		tis = append(tis, ti)
	}
	sort.Ints(tis)
	pos := map[int]table.Positions{}
	for _, ti := range tis {
		if r.ups.table(ti) != nil {
			pos[ti] = r.ups.positions(ti, byTable[ti])
			continue
		}
		p, err := r.sink.Resync(ctx, s.tables[ti], s.cfg.ID, byTable[ti])
		if err != nil {
			return nil, fmt.Errorf("resync %s: %w", s.tables[ti], err)
		}
		pos[ti] = p
	}
	out := make(map[tp]int64, len(tps))
	s.offMu.Lock()
	defer s.offMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range tps {
		rt := s.routes[t.topic]
		ps := &partState{
			t: t, key: t.key(), route: rt, start: make([]int64, len(rt.tables)),
			records: s.m.records.WithLabelValues(t.topic), dead: s.m.deadLetters.WithLabelValues(t.topic),
		}
		// The dead-letter table does not hold the partition back: a
		// dead letter is committed before any table's position moves
		// past it (commitDeadLetters), so every record below the lowest
		// position of the route's other tables that was a dead letter is
		// in it already. Its own position (none when it never received
		// a dead letter of the partition) only says which of the
		// records read again it still needs.
		lo, any, dlPos := int64(math.MaxInt64), false, int64(-1)
		for i, ti := range rt.tables {
			v, ok := pos[ti][ps.key]
			switch {
			case !ok:
				ps.start[i] = -1
			case ti == s.dl:
				ps.start[i], any, dlPos = v, true, v
			default:
				ps.start[i], any = v, true
				lo = min(lo, v)
			}
		}
		if any && lo == math.MaxInt64 {
			lo = dlPos // only the dead-letter table has a position
		}
		switch {
		case !any && s.cfg.StartOffset == "latest":
			for i := range ps.start {
				ps.start[i] = 0
			}
			lo = -1
			if v, ok := s.latestStart[t]; ok {
				lo = v
			} else {
				ps.latest = true
			}
		case !any:
			lo = 0
			fallthrough
		default:
			// A table without a position never committed a record of
			// the partition: with earliest it needs all of them, with
			// latest those from where the others stand.
			fill := int64(0)
			if s.cfg.StartOffset == "latest" {
				fill = lo
			}
			for i, ti := range rt.tables {
				if ps.start[i] >= 0 {
					continue
				}
				ps.start[i] = fill
				if ti != s.dl {
					lo = min(lo, fill)
				}
			}
		}
		ps.next = max(lo, 0)
		base := map[int]int64{}
		for i, ti := range rt.tables {
			if ti == s.dl {
				continue
			}
			base[ti] = ps.start[i]
			if !any && s.cfg.StartOffset == "latest" {
				base[ti] = lo // the log end (-1) or where it first started
			}
		}
		s.base[t] = base
		r.parts[t] = ps
		out[t] = lo
		if _, ok := s.groupDone[t]; !ok {
			s.groupDone[t] = 0
		}
	}
	return out, nil
}

// loop polls and writes until the run must end.
func (r *run) loop(ctx context.Context, cl *kgo.Client) error {
	for {
		if err := r.failed(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		pctx, cancel := r.pollCtx, context.CancelFunc(nil)
		if r.dlRows > 0 {
			// Polls are held for a dead-letter commit (write): the poll
			// ends by the time it is due.
			pctx, cancel = context.WithDeadline(r.pollCtx, r.dlSince.Add(deadLetterDelay))
		}
		fs := cl.PollRecords(pctx, r.s.cfg.BatchRecords)
		if cancel != nil {
			cancel()
		}
		err := r.handle(ctx, fs)
		cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// handle turns one poll into one batch per table and writes them. While a
// Write blocks on the writer's memory budget nothing is polled, so the
// client holds at most one buffered fetch per broker (back-pressure).
func (r *run) handle(ctx context.Context, fs kgo.Fetches) error {
	if err := r.failed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, fe := range fs.Errors() {
		var loss *kgo.ErrDataLoss
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			// The poll was cut short: the run is ending.
		case errors.As(fe.Err, &loss):
			r.s.log.Warn("broker lost data; consuming from where it resumes", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		default:
			return fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
	}
	// Size the append tables' builders for this poll from their share
	// of the last one, so that their buffers do not regrow.
	r.pollN = fs.NumRecords()
	for ti, out := range r.out {
		if r.ups.table(ti) == nil {
			out.reserve(r.pollN)
		}
	}
	var err error
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil || len(p.Records) == 0 && p.HighWatermark == 0 {
			return
		}
		t := tp{p.Topic, p.Partition}
		r.mu.Lock()
		ps := r.parts[t]
		r.mu.Unlock()
		if ps == nil {
			if len(p.Records) == 0 {
				return
			}
			err = fmt.Errorf("records of %s, which this run did not seek: %w", t.key(), ErrRebalanced)
			return
		}
		r.s.noteHWM(t, p.HighWatermark)
		r.partition(ps, p.Records)
	})
	if err != nil {
		return err
	}
	return r.write(ctx)
}

// partition handles a partition's records of one poll.
func (r *run) partition(ps *partState, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	if ps.latest {
		ps.latest = false
		r.s.offMu.Lock()
		r.s.latestStart[ps.t] = recs[0].Offset
		r.s.offMu.Unlock()
	}
	n := 0
	for _, rec := range recs {
		if rec.Offset < ps.next {
			continue // in every table already
		}
		n++
		r.record(ps, rec)
		ps.next = rec.Offset + 1
	}
	ps.records.Add(float64(n))
	r.held += n
	end := ps.next
	for i, ti := range ps.route.tables {
		if end <= ps.start[i] {
			continue
		}
		ps.start[i] = end
		if ti == r.s.dl {
			r.dlNext[ps.key] = end
		} else {
			r.out[ti].next[ps.key] = end
		}
	}
}

// undecodable handles a record whose decoding failed with err (nil: it
// did not): one that carries no row (errSkip) is skipped, any other
// becomes a dead letter, aimed at the route's table unless the route
// picks tables by a field. It reports whether the record was handled.
func (r *run) undecodable(ps *partState, needDL bool, rec *kgo.Record, err error) bool {
	if errors.Is(err, errSkip) {
		return true
	}
	if err == nil {
		return false
	}
	target := ""
	if rt := ps.route; rt.Field == "" {
		target = rt.Table
	}
	r.dead(ps, needDL, rec, target, err.Error())
	return true
}

// record routes, decodes and appends one record to the tables that still
// need it; what cannot be decoded or routed becomes a dead letter.
func (r *run) record(ps *partState, rec *kgo.Record) {
	rt := ps.route
	if rt.Mode == ModeUpsert {
		r.keyedRecord(ps, rec)
		return
	}
	o := rec.Offset
	needDL := o >= ps.start[len(ps.start)-1]
	changes, err := unwrap(rt.Format, rec.Value, r.changes[:0])
	r.changes = changes[:0]
	if r.undecodable(ps, needDL, rec, err) {
		return
	}
	ti := rt.def
	if rt.Field != "" {
		v, ferr := fieldValue(rec.Value, rt.Field)
		if ferr != nil && rt.def < 0 {
			r.dead(ps, needDL, rec, "", ferr.Error())
			return
		}
		if i, ok := rt.byValue[v]; ok && ferr == nil {
			ti = i
		} else if rt.def < 0 {
			r.dead(ps, needDL, rec, "", fmt.Sprintf("route on %s: no table for %q", rt.Field, v))
			return
		}
	}
	need := o >= ps.start[rt.slot[ti]]
	if !need && !needDL {
		return
	}
	out := r.out[ti]
	for i, c := range changes {
		b := out.bld
		if !need {
			b = out.probe
		}
		if err := b.Append(c.row); err != nil {
			reason := "table " + out.name + ": " + err.Error()
			if len(changes) > 1 {
				reason = fmt.Sprintf("table %s: row %d: %v", out.name, i, err)
			}
			r.dead(ps, needDL, rec, out.name, reason)
			continue
		}
		if need {
			out.appendMeta(rowMeta{rec: rec, op: c.op, eventTime: c.eventTime})
		}
	}
}

func (r *run) dead(ps *partState, needDL bool, rec *kgo.Record, target, reason string) {
	if !needDL {
		return
	}
	r.dl.Append(table.DeadLetter{
		Source: r.s.cfg.ID, Partition: ps.key, Position: rec.Offset, Target: target,
		Key: rec.Key, Raw: rec.Value, Reason: reason, ReceivedAt: r.s.now().UTC(),
	})
	r.dlRows++
	ps.dead.Inc()
}

// deadLetterDelay is how long polls with dead letters are held, their
// rows and positions in the run's builders, so that one dead-letter
// commit serves them all (write); heldPolls bounds them in polls of
// BatchRecords records.
const (
	deadLetterDelay = time.Second
	heldPolls       = 8
)

// write hands the polls' batches to the writer: one per table with rows or
// moved positions, the dead letters first (commitDeadLetters). While dead
// letters wait, the polls are held (up to deadLetterDelay and heldPolls
// polls) so that one commit of the dead-letter table serves them.
func (r *run) write(ctx context.Context) error {
	if r.dlRows > 0 {
		now := r.s.now()
		if r.dlSince.IsZero() {
			r.dlSince = now
		}
		if now.Sub(r.dlSince) < deadLetterDelay && r.held < heldPolls*r.s.cfg.BatchRecords {
			return nil
		}
	}
	if err := r.commitDeadLetters(ctx, r.dlNext); err != nil {
		return err
	}
	r.dlNext = table.Positions{}
	r.dlSince, r.held = time.Time{}, 0
	for ti, out := range r.out {
		if r.ups.table(ti) != nil {
			if err := r.writeKeyed(ti); err != nil {
				return err
			}
			continue
		}
		if r.pollN > 0 {
			out.share = float64(out.rows) / float64(r.pollN)
		}
		rec := out.take()
		if rec == nil && len(out.next) == 0 {
			continue
		}
		b := writer.Batch{Table: out.name, Source: r.s.cfg.ID, Record: rec, Next: out.next, MaxEventTime: out.maxEvent}
		r.s.noteWrite(ti, out.next, out.maxEvent)
		out.next, out.maxEvent = table.Positions{}, time.Time{}
		if err := r.sink.Write(b); err != nil {
			return fmt.Errorf("write %s: %w", out.name, err)
		}
	}
	return nil
}

// commitDeadLetters hands the dead letters collected so far to the writer
// with the dead-letter table's positions next and, when there were any,
// commits them before any other table is handed positions past them: a
// restart then never needs to read a partition below the lowest position
// of its route's other tables to find a dead letter (seek), and a crash
// between the commits of two tables loses none. Positions without dead
// letters are only buffered (the writer commits them with the table's
// next rows).
func (r *run) commitDeadLetters(ctx context.Context, next table.Positions) error {
	if r.dlRows == 0 && len(next) == 0 {
		return nil
	}
	name := r.s.tables[r.s.dl]
	b := writer.Batch{Table: name, Source: r.s.cfg.ID, Next: next}
	rows := r.dlRows > 0
	if rows {
		b.Record = r.dl.NewRecordBatch()
		r.dlRows = 0
	}
	if err := r.sink.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !rows {
		return nil
	}
	// Resync of no partitions commits the dead-letter table alone (and
	// reloads nothing): the other tables keep their commit cadence.
	if _, err := r.sink.Resync(ctx, name, r.s.cfg.ID, nil); err != nil {
		return fmt.Errorf("commit dead letters to %s: %w", name, err)
	}
	return nil
}
