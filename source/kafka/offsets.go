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

// commitLoop commits group offsets and updates the gauges every interval,
// and at once when partitions were assigned, until Close.
func (s *Source) commitLoop(cl *kgo.Client) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.kick:
		}
		s.loadHWMs(ctx, cl)
		offs := s.groupOffsets(nil)
		if len(offs) > 0 {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			cl.CommitOffsets(cctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
				ccancel()
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

// kickCommitLoop makes commitLoop run now (after an assignment, so the lag
// of the new partitions shows at once).
func (s *Source) kickCommitLoop() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loadHWMs asks the partition leaders for the high watermarks of the owned
// partitions no fetch has reported yet, so that their lag shows from the
// assignment on, before any record is read or committed.
func (s *Source) loadHWMs(ctx context.Context, cl *kgo.Client) {
	s.offMu.Lock()
	var need []tp
	for t := range s.owned {
		if _, ok := s.hwm[t]; !ok {
			need = append(need, t)
		}
	}
	s.offMu.Unlock()
	if len(need) == 0 {
		return
	}
	req := kmsg.NewPtrListOffsetsRequest()
	idx := map[string]int{}
	for _, t := range need {
		i, ok := idx[t.topic]
		if !ok {
			i = len(req.Topics)
			idx[t.topic] = i
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = t.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = t.part, -1 // -1: the high watermark
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	shards := cl.RequestSharded(lctx, req)
	s.offMu.Lock()
	defer s.offMu.Unlock()
	for _, sh := range shards {
		if sh.Err != nil {
			s.log.Debug("list high watermarks of assigned partitions failed (for the lag gauge; retried)", "err", sh.Err)
			continue
		}
		for _, rt := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				t := tp{rt.Topic, rp.Partition}
				if _, has := s.hwm[t]; rp.ErrorCode != 0 || has || !s.owned[t] {
					continue // a fetch reported a newer one, or we lost it
				}
				s.hwm[t] = rp.Offset
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
		if h, has := s.hwm[t]; has && s.owned[t] {
			lag := int64(0) // start-offset latest and nothing read: at the end
			if pos, ok := s.lagPos(t, rt); ok {
				lag = max(0, h-pos)
			}
			s.m.lag.WithLabelValues(t.topic, strconv.Itoa(int(t.part))).Set(float64(lag))
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
		if ok && pos > s.groupDone[t] {
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

// lagPos is where partition t stands in its routed tables, for the lag:
// the lowest of their positions, each the later of the last commit's and
// the one the table had when the partition was seeked (a table without a
// position counts from where the partition is read). ok is false while
// it is unknown: start-offset latest and no record read yet. Call with
// offMu held.
func (s *Source) lagPos(t tp, rt *route) (pos int64, ok bool) {
	pos = math.MaxInt64
	for _, ti := range rt.tables {
		if ti == s.dl {
			continue
		}
		v, has := s.committed[ti][t.key()]
		if !has {
			v = -1
		}
		if b, seeked := s.base[t][ti]; seeked {
			v = max(v, b)
		}
		if v < 0 {
			ls, has := s.latestStart[t]
			if !has {
				continue
			}
			v = ls
		}
		pos, ok = min(pos, v), true
	}
	return pos, ok
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
