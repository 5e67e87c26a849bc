// Package gen is a deterministic synthetic source: tracking events and the
// orders they place, for demos, benchmarks and end-to-end tests of
// exactly-once ingestion.
//
// The record at offset o of partition p ("p0", "p1", …) is a pure function
// of (Seed, p, o): a splitmix64 stream seeded by a hash of the three, so a
// restart at any position regenerates exactly the rows it had generated.
// One record stream feeds up to three tables: every good record is an
// event, every order event is also an order row, and a small fraction of
// records are deliberately malformed JSON that is decoded (and rejected) by
// jsonrow and written to the dead-letter table with its position, raw bytes
// and reason. Positions are next offsets per partition; each table resumes
// from its own committed positions.
//
// The package only generates and hands batches to a writer.Sink: it never
// commits, touches the catalog or storage, or reads other sources.
package gen

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/jsonrow"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Generator is the synthetic source. It holds no state between runs beyond
// its configuration: Run re-opens the tables and resumes from them.
type Generator struct {
	cfg Config
	m   *model
}

var _ source.Source = (*Generator)(nil)

// New returns a generator for cfg (after ApplyDefaults) or the first
// setting Validate rejects.
func New(cfg Config) (*Generator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new generator: %w", err)
	}
	return &Generator{cfg: cfg, m: newModel(&cfg)}, nil
}

// ID is the source id positions are stored under (Config.ID).
func (g *Generator) ID() string { return g.cfg.ID }

// Specs are the specs of the tables Run opens that declared does not
// hold: events, orders unless disabled, and the dead-letter table unless
// BadFraction is 0. A declared table is used as declared.
func (g *Generator) Specs(declared []table.Spec) ([]table.Spec, error) {
	specs := []table.Spec{EventsSpec(g.cfg.EventsTable)}
	if g.cfg.OrdersTable != "" {
		specs = append(specs, OrdersSpec(g.cfg.OrdersTable))
	}
	if g.cfg.BadFraction > 0 {
		specs = append(specs, table.DeadLetterSpec(g.cfg.DeadLetterTable))
	}
	return slices.DeleteFunc(specs, func(s table.Spec) bool {
		return slices.ContainsFunc(declared, func(d table.Spec) bool { return d.Name == s.Name })
	}), nil
}

// Close implements source.Source; the generator holds nothing.
func (g *Generator) Close() error { return nil }

// Health implements source.Source: the generator needs nothing outside.
func (g *Generator) Health() error { return nil }

// partition is the progress of one partition in a run.
type partition struct {
	name string
	next int64 // next offset to generate
	// Start positions per table: offsets below them are already there.
	events, orders, deadLetters int64
}

// run is the state of one Run call.
type run struct {
	cfg    *Config
	m      *model
	sink   writer.Sink
	parts  []partition
	ev     *eventCols
	ord    *orderCols               // nil when orders are disabled
	dl     *table.DeadLetterBuilder // nil when BadFraction is 0
	dec    *jsonrow.Builder
	e      event
	raw    []byte
	evMax  int64
	ordMax int64
}

// Run opens the tables on sink, resumes every partition from the lowest
// position its tables hold, and writes batches round-robin over partitions
// until ctx is done (it returns ctx.Err()), every partition reached
// RowsPerPartition (nil) or a Write fails (that error).
func (g *Generator) Run(ctx context.Context, sink writer.Sink) error {
	r, err := g.open(sink)
	if err != nil {
		return err
	}
	defer r.release()
	var pace *pacer
	if g.cfg.Rate > 0 {
		pace = newPacer(g.cfg.Rate, g.cfg.Partitions*g.cfg.BatchRows)
		defer pace.stop()
	}
	return r.loop(ctx, pace)
}

func (g *Generator) open(sink writer.Sink) (*run, error) {
	cfg := &g.cfg
	mem := cfg.Allocator
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	r := &run{cfg: cfg, m: g.m, sink: sink}
	ok := false
	defer func() {
		if !ok {
			r.release()
		}
	}()

	evPos, evSchema, err := sink.Open(cfg.EventsTable, cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.EventsTable, err)
	}
	if r.ev, err = newEventCols(mem, cfg.EventsTable, evSchema); err != nil {
		return nil, err
	}
	var ordPos, dlPos table.Positions
	if cfg.OrdersTable != "" {
		var sc *arrow.Schema
		if ordPos, sc, err = sink.Open(cfg.OrdersTable, cfg.ID); err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.OrdersTable, err)
		}
		if r.ord, err = newOrderCols(mem, cfg.OrdersTable, sc); err != nil {
			return nil, err
		}
	}
	if cfg.BadFraction > 0 {
		var sc *arrow.Schema
		if dlPos, sc, err = sink.Open(cfg.DeadLetterTable, cfg.ID); err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.DeadLetterTable, err)
		}
		if r.dl, err = table.NewDeadLetterBuilder(mem, cfg.DeadLetterTable, sc); err != nil {
			return nil, err
		}
		// Bad records are checked against the events table's schema, as a
		// consumer of the raw stream would.
		dec, err := jsonrow.NewDecoder(evSchema, jsonrow.Options{})
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", cfg.EventsTable, err)
		}
		r.dec = dec.NewBuilder(mem)
	}

	r.parts = make([]partition, cfg.Partitions)
	for i := range r.parts {
		p := &r.parts[i]
		p.name = "p" + strconv.Itoa(i)
		p.events = evPos[p.name]
		p.orders, p.deadLetters = math.MaxInt64, math.MaxInt64
		p.next = p.events
		if r.ord != nil {
			p.orders = ordPos[p.name]
			p.next = min(p.next, p.orders)
		}
		if r.dl != nil {
			p.deadLetters = dlPos[p.name]
			p.next = min(p.next, p.deadLetters)
		}
		if p.next < 0 {
			return nil, fmt.Errorf("resume %s: negative position %d", p.name, p.next)
		}
	}
	ok = true
	return r, nil
}

func (r *run) release() {
	if r.ev != nil {
		r.ev.rb.Release()
	}
	if r.ord != nil {
		r.ord.rb.Release()
	}
	if r.dl != nil {
		r.dl.Release()
	}
	if r.dec != nil {
		r.dec.Release()
	}
}

// remaining is how many offsets partition i has left. An unbounded
// partition ends at MaxOffset, where event ids would start to collide.
func (r *run) remaining(i int) int64 {
	end := int64(MaxOffset)
	if r.cfg.RowsPerPartition > 0 {
		end = r.cfg.RowsPerPartition
	}
	return max(0, end-r.parts[i].next)
}

func (r *run) loop(ctx context.Context, pace *pacer) error {
	batch := int64(r.cfg.BatchRows)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		active := 0
		for i := range r.parts {
			if r.remaining(i) > 0 {
				active++
			}
		}
		if active == 0 {
			return nil
		}
		share := batch
		if pace != nil {
			budget, err := pace.wait(ctx, float64(active)*float64(batch))
			if err != nil {
				return err
			}
			share = min(batch, int64(math.Ceil(budget/float64(active))))
		}
		for i := range r.parts {
			n := min(share, r.remaining(i))
			if n <= 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := r.chunk(i, n); err != nil {
				return err
			}
			if pace != nil {
				pace.spend(float64(n))
			}
		}
	}
}

// chunk generates offsets [next, next+n) of partition i and writes one
// batch per table that still needs some of them.
func (r *run) chunk(i int, n int64) error {
	p := &r.parts[i]
	from, to := p.next, p.next+n
	wantEv := to > p.events
	wantOrd := r.ord != nil && to > p.orders
	wantDL := r.dl != nil && to > p.deadLetters
	r.evMax, r.ordMax = math.MinInt64, math.MinInt64
	if wantEv {
		r.ev.reserve(r.m, int(n))
	}
	for o := from; o < to; o++ {
		needEv := wantEv && o >= p.events
		needOrd := wantOrd && o >= p.orders
		needDL := wantDL && o >= p.deadLetters
		if !needEv && !needOrd && (!needDL || !r.m.isBad(i, o)) {
			continue
		}
		e := &r.e
		r.m.gen(i, o, e)
		if e.bad {
			if needDL {
				if err := r.deadLetter(p, e); err != nil {
					return err
				}
			}
			continue
		}
		if needEv {
			r.ev.append(r.m, e)
			r.evMax = max(r.evMax, e.time)
		}
		if needOrd && e.etype == evOrder {
			r.ord.append(r.m, e)
			r.ordMax = max(r.ordMax, e.time)
		}
	}
	p.next = to
	next := table.Positions{p.name: to}
	if wantEv {
		if err := r.write(r.cfg.EventsTable, r.ev.rb.NewRecordBatch(), next, r.evMax); err != nil {
			return err
		}
	}
	if wantOrd {
		if err := r.write(r.cfg.OrdersTable, r.ord.rb.NewRecordBatch(), next, r.ordMax); err != nil {
			return err
		}
	}
	if wantDL {
		if rec := r.dl.NewRecordBatch(); rec.NumRows() > 0 {
			if err := r.write(r.cfg.DeadLetterTable, rec, next, math.MinInt64); err != nil {
				return err
			}
		} else {
			rec.Release()
		}
	}
	return nil
}

// deadLetter renders the bad record e as raw JSON, has the events decoder
// reject it, and appends the rejection.
func (r *run) deadLetter(p *partition, e *event) error {
	r.raw = r.m.appendJSON(r.raw[:0], e)
	err := r.dec.Append(r.raw)
	if err == nil {
		// The defect is not one the events table's schema rejects (its
		// columns were changed); the record must not be lost silently.
		return fmt.Errorf("generate %s/%d: bad record was accepted by the schema of %s", p.name, e.offset, r.cfg.EventsTable)
	}
	r.dl.Append(table.DeadLetter{
		Source: r.cfg.ID, Partition: p.name, Position: e.offset, Target: r.cfg.EventsTable,
		Raw: r.raw, Reason: err.Error(), ReceivedAt: r.cfg.Now(),
	})
	return nil
}

// write hands one batch to the sink. An empty record is sent as nil: the
// batch only advances positions.
func (r *run) write(tbl string, rec arrow.RecordBatch, next table.Positions, maxUS int64) error {
	b := writer.Batch{Table: tbl, Source: r.cfg.ID, Record: rec, Next: next}
	if rec.NumRows() == 0 {
		rec.Release()
		b.Record = nil
	}
	if maxUS != math.MinInt64 {
		b.MaxEventTime = time.UnixMicro(maxUS).UTC()
	}
	if err := r.sink.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", tbl, err)
	}
	return nil
}

// pacer is a token bucket checked on a ticker: Rate rows per second,
// bursting to at most two ticks' worth after a stall. A round waits for a
// tick's worth of tokens (or a full round's), so batches stay large at low
// rates.
type pacer struct {
	rate, tokens, perTick, burst float64
	last                         time.Time
	tick                         *time.Ticker
}

// newPacer ticks often enough that a full round (roundRows rows) is not
// much more than a tick's worth, between 10 ms and 1 s.
func newPacer(rate float64, roundRows int) *pacer {
	d := time.Duration(float64(roundRows) / rate * float64(time.Second))
	d = min(max(d, 10*time.Millisecond), time.Second)
	perTick := max(rate*d.Seconds(), 1)
	return &pacer{
		rate:    rate,
		tokens:  perTick, // the first round starts at once
		perTick: perTick,
		burst:   2 * perTick,
		last:    time.Now(),
		tick:    time.NewTicker(d),
	}
}

func (pc *pacer) stop() { pc.tick.Stop() }

func (pc *pacer) refill() {
	now := time.Now()
	pc.tokens = min(pc.burst, pc.tokens+now.Sub(pc.last).Seconds()*pc.rate)
	pc.last = now
}

// wait blocks until a tick's worth of rows (or limit, if less) may be
// generated and returns how many may (at most limit).
func (pc *pacer) wait(ctx context.Context, limit float64) (float64, error) {
	for {
		pc.refill()
		if pc.tokens >= min(limit, pc.perTick) {
			return min(pc.tokens, limit), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-pc.tick.C:
		}
	}
}

// spend takes n rows' tokens; rounding a share up may overdraw a little,
// which the next wait pays back.
func (pc *pacer) spend(n float64) { pc.tokens -= n }
