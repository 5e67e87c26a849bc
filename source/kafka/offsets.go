package kafka

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// OnCommit records the positions a commit made durable, for group offsets,
// lag and freshness. Run registers it with its sink (Sink.ObserveCommits);
// it is idempotent and never blocks on the group.
func (s *Source) OnCommit(ci writer.CommitInfo) {
	ti := slices.Index(s.tables, ci.Table)
	pos, ok := ci.Positions[s.cfg.ID]
	if ti < 0 || !ok {
		return
	}
	s.offMu.Lock()
	defer s.offMu.Unlock()
	s.committed[ti] = pos.Clone()
	marks := s.marks[ti]
	keep := marks[:0]
	for _, m := range marks {
		done := true
		for k, v := range m.pos {
			if pos[k] < v {
				done = false
				break
			}
		}
		if !done {
			keep = append(keep, m)
			continue
		}
		if m.ev.After(s.lastEvent[ti]) {
			s.lastEvent[ti] = m.ev
		}
	}
	s.marks[ti] = keep
}

// noteWrite remembers a batch's newest event time until its positions are
// committed.
func (s *Source) noteWrite(ti int, next table.Positions, ev time.Time) {
	if ev.IsZero() || len(next) == 0 {
		return
	}
	s.offMu.Lock()
	defer s.offMu.Unlock()
	const maxMarks = 4096
	ms := append(s.marks[ti], eventMark{pos: next.Clone(), ev: ev})
	if len(ms) > maxMarks {
		ms = ms[len(ms)-maxMarks:]
	}
	s.marks[ti] = ms
}

func (s *Source) noteHWM(t tp, hwm int64) {
	s.offMu.Lock()
	s.hwm[t] = hwm
	s.offMu.Unlock()
}

// commitLoop commits group offsets and updates the gauges every interval
// until Close.
func (s *Source) commitLoop(cl *kgo.Client) {
	defer s.wg.Done()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			offs := s.groupOffsets(nil)
			if len(offs) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				cl.CommitOffsets(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
					cancel()
					if err != nil {
						s.log.Debug("commit group offsets failed (they only serve monitoring)", "err", err)
						return
					}
					s.offMu.Lock()
					for topic, ps := range offs {
						for p, eo := range ps {
							s.groupDone[tp{topic, p}] = eo.Offset
						}
					}
					s.offMu.Unlock()
				})
			}
		}
	}
}

// groupOffsets computes the group offsets to commit — for each owned
// partition (or only those in only), the lowest position of its routed
// tables, where it moved — and refreshes the lag and freshness gauges.
func (s *Source) groupOffsets(only []tp) map[string]map[int32]kgo.EpochOffset {
	s.offMu.Lock()
	defer s.offMu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	set := s.owned
	if only != nil {
		set = map[tp]bool{}
		for _, t := range only {
			set[t] = true
		}
	}
	for t := range set {
		rt := s.routes[t.topic]
		if rt == nil {
			continue
		}
		pos, ok := int64(math.MaxInt64), true
		for _, ti := range rt.tables {
			if ti == s.dl {
				continue
			}
			v, has := s.committed[ti][t.key()]
			if !has {
				ok = false
				break
			}
			pos = min(pos, v)
		}
		if !ok {
			continue
		}
		if h, has := s.hwm[t]; has && s.owned[t] {
			s.m.lag.WithLabelValues(t.topic, strconv.Itoa(int(t.part))).Set(float64(max(0, h-pos)))
		}
		if pos > s.groupDone[t] {
			if out[t.topic] == nil {
				out[t.topic] = map[int32]kgo.EpochOffset{}
			}
			out[t.topic][t.part] = kgo.EpochOffset{Epoch: -1, Offset: pos}
		}
	}
	now := s.now()
	for ti, ev := range s.lastEvent {
		s.m.freshness.WithLabelValues(s.tables[ti]).Set(now.Sub(ev).Seconds())
	}
	return out
}

// commitGroupOffsets commits the group offsets of tps now (from a revoke
// callback, where an async commit would land after the handover).
func (s *Source) commitGroupOffsets(ctx context.Context, cl *kgo.Client, tps []tp) {
	offs := s.groupOffsets(tps)
	if len(offs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(cctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			s.log.Debug("commit group offsets of revoked partitions failed (they only serve monitoring)", "err", err)
		}
	})
}
