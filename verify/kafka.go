package verify

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/table"
)

// KafkaOptions tune the kafka check.
type KafkaOptions struct {
	// IdleTimeout ends reading a partition that delivers nothing for this
	// long before the committed position: the offsets left are taken as
	// absent from the broker (compacted away, or transaction markers at
	// the end). Default 5s.
	IdleTimeout time.Duration
}

// partCheck is one topic-partition's check: offsets [base, end) are
// committed by every table the partition feeds, and each must be held by
// exactly one row of them (routed tables and dead letters) when the broker
// has it.
type partCheck struct {
	topic     string
	partition int32
	base, end int64
	// seen and dup are bitsets over [base, end).
	seen, dup []uint64
	below     int64 // rows of offsets below base, not checked
}

func (p *partCheck) mark(off int64) {
	if off < p.base {
		p.below++
		return
	}
	if off >= p.end {
		return
	}
	i := off - p.base
	w, b := i/64, uint64(1)<<(i%64)
	if p.seen[w]&b != 0 {
		p.dup[w] |= b
	}
	p.seen[w] |= b
}

func (p *partCheck) has(off int64) bool {
	i := off - p.base
	return p.seen[i/64]&(uint64(1)<<(i%64)) != 0
}

// Kafka checks the tables of a kafka source's routes: per topic-partition,
// every offset the tables' positions say is consumed (below the lowest
// position of the tables the partition feeds, its dead-letter table
// included) must be held by exactly one row — a routed table's row with
// the _kafka_topic, _kafka_partition and _kafka_offset metadata columns,
// or a dead letter (source, partition, position) — when the broker still
// has a record at that offset. Offsets the broker does not return
// (compacted away, transaction markers, aborted records: it reads
// committed records only, as the source does) are not missing. Topics
// routed to a table without the metadata columns are skipped.
func Kafka(ctx context.Context, cat icecat.Catalog, cfg kafka.Config, ko KafkaOptions, o Options) (*Report, error) {
	o.applyDefaults()
	if ko.IdleTimeout <= 0 {
		ko.IdleTimeout = 5 * time.Second
	}
	rep := &Report{Check: CheckKafka, Started: o.Now()}
	defer func() { rep.Duration = o.Now().Sub(rep.Started) }()
	copts, err := kafka.ClientOptions(&cfg)
	if err != nil {
		return nil, err
	}
	load := func(name string) (*icetable.Table, error) {
		ident, err := table.ParseIdent(name)
		if err != nil {
			return nil, err
		}
		tbl, err := cat.LoadTable(ctx, ident)
		if errors.Is(err, icecat.ErrNoSuchTable) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load table %s: %w", name, err)
		}
		return tbl, nil
	}
	dl, err := load(cfg.DeadLetterTable)
	if err != nil {
		return nil, err
	}
	for _, route := range cfg.Routes {
		names := route.TableNames()
		tr := newTableReport(strings.Join(names, ","), o.MaxListed)
		rep.Tables = append(rep.Tables, tr)
		tr.Against = "topics " + strings.Join(route.Topics, ",")
		if err := checkRoute(ctx, cat, cfg, route, names, dl, load, copts, ko, o, tr); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func checkRoute(ctx context.Context, cat icecat.Catalog, cfg kafka.Config, route kafka.Route, names []string, dl *icetable.Table,
	load func(string) (*icetable.Table, error), copts []kgo.Opt, ko KafkaOptions, o Options, tr *TableReport) error {
	var tables []*icetable.Table
	for _, n := range names {
		tbl, err := load(n)
		if err != nil {
			return err
		}
		if tbl == nil {
			tr.Skipped = "table " + n + " does not exist"
			return nil
		}
		for _, c := range []string{kafka.ColTopic, kafka.ColPartition, kafka.ColOffset} {
			if _, ok := tbl.Schema().FindFieldByName(c); !ok {
				tr.Skipped = fmt.Sprintf("table %s has no %s column (metadata-columns: true adds it)", n, c)
				return nil
			}
		}
		tables = append(tables, tbl)
	}
	feeding := append([]*icetable.Table(nil), tables...)
	if dl != nil {
		feeding = append(feeding, dl)
	}
	// The committed range of each partition: below the lowest position.
	topics := map[string]bool{}
	for _, t := range route.Topics {
		topics[t] = true
	}
	ends := map[string]int64{}
	for _, tbl := range feeding {
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			return err
		}
		for part, next := range pm[cfg.ID] {
			topic, _, ok := splitPartition(part)
			if !ok || !topics[topic] {
				continue
			}
			if cur, ok := ends[part]; !ok || next < cur {
				ends[part] = next
			}
		}
	}
	cl, err := kgo.NewClient(copts...)
	if err != nil {
		return fmt.Errorf("connect to kafka: %w", err)
	}
	defer cl.Close()
	starts, err := logStarts(ctx, cl, ends)
	if err != nil {
		return err
	}
	parts := map[string]*partCheck{}
	for part, end := range ends {
		topic, p, _ := splitPartition(part)
		base := min(starts[part], end)
		n := (end - base + 63) / 64
		parts[part] = &partCheck{topic: topic, partition: p, base: base, end: end, seen: make([]uint64, n), dup: make([]uint64, n)}
	}
	if len(parts) == 0 {
		tr.Notes = append(tr.Notes, "no committed positions for these topics yet")
		return nil
	}

	// The rows that hold offsets.
	for i, tbl := range tables {
		err := scanOffsets(ctx, cat, names[i], tbl, []string{kafka.ColTopic, kafka.ColPartition, kafka.ColOffset}, nil, o,
			func(topic string, p int32, off int64) {
				if pc := parts[topic+"/"+strconv.Itoa(int(p))]; pc != nil {
					pc.mark(off)
				}
			})
		if err != nil {
			return err
		}
	}
	if dl != nil {
		err := scanOffsets(ctx, cat, cfg.DeadLetterTable, dl, []string{"partition", "position"},
			iceberg.EqualTo(iceberg.Reference("source"), cfg.ID), o,
			func(part string, _ int32, off int64) {
				if pc := parts[part]; pc != nil {
					pc.mark(off)
				}
			})
		if err != nil {
			return err
		}
	}

	// The broker's records in each committed range.
	assign := map[string]map[int32]kgo.Offset{}
	left := map[string]*partCheck{}
	for part, pc := range parts {
		if pc.base >= pc.end {
			continue
		}
		if assign[pc.topic] == nil {
			assign[pc.topic] = map[int32]kgo.Offset{}
		}
		assign[pc.topic][pc.partition] = kgo.NewOffset().At(pc.base)
		left[part] = pc
	}
	if len(left) > 0 {
		rc, err := kgo.NewClient(append(copts, kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
		if err != nil {
			return fmt.Errorf("connect to kafka: %w", err)
		}
		defer rc.Close()
		for len(left) > 0 {
			pctx, cancel := context.WithTimeout(ctx, ko.IdleTimeout)
			fs := rc.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var fetchErr error
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					fetchErr = fmt.Errorf("read %s/%d: %w", t, p, err)
				}
			})
			if fetchErr != nil {
				return fetchErr
			}
			if fs.NumRecords() == 0 {
				for part, pc := range left {
					tr.Notes = append(tr.Notes, fmt.Sprintf("%s: nothing delivered for %s; offsets up to %d taken as absent from the broker", part, ko.IdleTimeout, pc.end))
				}
				break
			}
			fs.EachRecord(func(r *kgo.Record) {
				part := r.Topic + "/" + strconv.Itoa(int(r.Partition))
				pc := left[part]
				if pc == nil || r.Offset >= pc.end {
					return
				}
				tr.RowsCompared++
				if !pc.has(r.Offset) {
					tr.add(Difference{Kind: KindMissing, Key: fmt.Sprintf("%s@%d", part, r.Offset)})
				}
				if r.Offset >= pc.end-1 {
					delete(left, part)
				}
			})
			o.Metrics.addRows(CheckKafka, tr.Table, int64(fs.NumRecords()))
		}
	}
	for _, part := range sortedKeys(parts) {
		pc := parts[part]
		for w, word := range pc.dup {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				word &^= 1 << b
				tr.add(Difference{Kind: KindDuplicate, Key: fmt.Sprintf("%s@%d", part, pc.base+int64(w*64+b))})
			}
		}
		if pc.below > 0 {
			tr.Notes = append(tr.Notes, fmt.Sprintf("%s: %d rows hold offsets below the broker's log start %d, not checked", part, pc.below, pc.base))
		}
	}
	return nil
}

// splitPartition splits "topic/partition".
func splitPartition(s string) (string, int32, bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return s[:i], int32(p), true
}

// logStarts asks the brokers for the log start offset of each
// "topic/partition".
func logStarts(ctx context.Context, cl *kgo.Client, parts map[string]int64) (map[string]int64, error) {
	return listOffsets(ctx, cl, parts, -2)
}

// listOffsets asks the brokers for the offset of each "topic/partition"
// at ts: -2 the log start, -1 the end.
func listOffsets(ctx context.Context, cl *kgo.Client, parts map[string]int64, ts int64) (map[string]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	byTopic := map[string][]int32{}
	for part := range parts {
		t, p, _ := splitPartition(part)
		byTopic[t] = append(byTopic[t], p)
	}
	for t, ps := range byTopic {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range ps {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	out := map[string]int64{}
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("list offsets: %w", shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("list offsets of %s/%d: %w", t.Topic, p.Partition, err)
				}
				out[t.Topic+"/"+strconv.Itoa(int(p.Partition))] = p.Offset
			}
		}
	}
	return out, nil
}

// scanOffsets reads the (topic, partition, offset) of every row of tbl
// (cols: topic, partition, offset columns; or partition as
// "topic/partition" and position for dead letters).
func scanOffsets(ctx context.Context, cat icecat.Catalog, name string, tbl *icetable.Table, cols []string, filter iceberg.BooleanExpression,
	o Options, fn func(topic string, partition int32, offset int64)) error {
	rd, err := reader.New(cat, name, reader.Config{Columns: cols, Filter: filter, Concurrency: o.Concurrency, Logger: o.Logger})
	if err != nil {
		return err
	}
	stream, err := rd.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	for rec, err := range stream.Records() {
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		err = offsetsOf(rec, len(cols) == 2, fn)
		rec.Release()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
	return nil
}

func offsetsOf(rec arrow.RecordBatch, deadLetters bool, fn func(string, int32, int64)) error {
	n := int(rec.NumRows())
	if deadLetters {
		part, ok1 := rec.Column(0).(*array.String)
		pos, ok2 := rec.Column(1).(*array.Int64)
		if !ok1 || !ok2 {
			return errors.New("dead letters: want partition string and position long")
		}
		for i := range n {
			if !part.IsNull(i) && !pos.IsNull(i) {
				fn(part.Value(i), 0, pos.Value(i))
			}
		}
		return nil
	}
	topic, ok1 := rec.Column(0).(*array.String)
	off, ok3 := rec.Column(2).(*array.Int64)
	if !ok1 || !ok3 {
		return errors.New("want _kafka_topic string and _kafka_offset long")
	}
	pcol := rec.Column(1)
	for i := range n {
		if topic.IsNull(i) || off.IsNull(i) || pcol.IsNull(i) {
			continue
		}
		var p int32
		switch c := pcol.(type) {
		case *array.Int32:
			p = c.Value(i)
		case *array.Int64:
			p = int32(c.Value(i))
		default:
			return errors.New("want _kafka_partition int")
		}
		fn(topic.Value(i), p, off.Value(i))
	}
	return nil
}
