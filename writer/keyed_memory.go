package writer

// Memory accounting of the key indexes.
//
// Everything a keyed table holds that grows with its keys — its key index
// — counts in the writer's memory budget (Config.MemoryBudget): the rows
// buffered by all tables may take what the indexes leave of it, but never
// less than FlushBytes, so appends and keyed changes go on (the
// back-pressure is the smaller buffer: more, smaller flushes). When the
// indexes alone need more than the budget minus FlushBytes the writer is
// over budget: it logs a WARN once (and an INFO once it fits again) and,
// if the process's soft memory limit is still the one derived from this
// config (Config.MemoryLimit, as floe ingest sets it), raises that limit
// by the excess, so that the garbage collector does not run back to back
// against a heap it cannot shrink. The indexes hold no pointers, so the
// collector never scans them; only its trigger has to allow for them.
// Spilling the index to a persistent store instead is a later step (the
// measurements behind that choice are in keyed_hashindex.go's comment).

import (
	"runtime/debug"

	"github.com/apache/iceberg-go"
)

// reportIndexLocked adds the change of the table's index memory to the
// writer's total; k.mu must be held or k not yet shared.
func (k *KeyedTable) reportIndexLocked() {
	b := int64(0)
	if k.index != nil && !k.closed {
		b = k.index.Bytes()
	}
	if d := b - k.indexReported; d != 0 {
		k.indexReported = b
		k.w.addIndexBytes(d)
	}
}

// indexGaugesLocked sets the index metrics and the writer's accounting;
// k.mu must be held or k not yet shared.
func (k *KeyedTable) indexGaugesLocked() {
	k.w.m.indexKeys.WithLabelValues(k.name).Set(float64(k.index.Len()))
	k.w.m.indexBytes.WithLabelValues(k.name).Set(float64(k.index.Bytes()))
	k.reportIndexLocked()
}

// IndexBytes is the memory of the table's key index, as
// floe_writer_keyed_index_bytes reports it.
func (k *KeyedTable) IndexBytes() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.index.Bytes()
}

// IndexBytes is the memory of all open keyed tables' key indexes, as
// counted in the memory budget.
func (w *Writer) IndexBytes() int64 {
	w.memMu.Lock()
	defer w.memMu.Unlock()
	return w.indexBytes
}

// rowBudgetLocked is what the budget leaves for buffered rows; w.mu must
// be held.
func (w *Writer) rowBudgetLocked() int64 {
	return max(int64(w.cfg.FlushBytes), int64(w.cfg.MemoryBudget)-w.indexShare.Load())
}

// addIndexBytes changes the indexes' total by d and handles the budget's
// transitions.
func (w *Writer) addIndexBytes(d int64) {
	w.memMu.Lock()
	defer w.memMu.Unlock()
	w.indexBytes += d
	w.indexShare.Store(w.indexBytes)
	excess := w.indexBytes - (int64(w.cfg.MemoryBudget) - int64(w.cfg.FlushBytes))
	over := excess > 0
	if over != w.overBudget {
		w.overBudget = over
		if over {
			w.log.Warn("key indexes exceed the writer's memory budget: buffered rows are held to flush-bytes and the process needs more memory than the budget; raise writer.memory-budget",
				"index_bytes", w.indexBytes, "memory_budget", int64(w.cfg.MemoryBudget), "flush_bytes", int64(w.cfg.FlushBytes))
		} else {
			w.log.Info("key indexes fit the writer's memory budget again", "index_bytes", w.indexBytes,
				"memory_budget", int64(w.cfg.MemoryBudget))
		}
	}
	w.adjustLimitLocked(max(0, excess))
	// A smaller index leaves room for rows: wake writers waiting for it.
	if d < 0 {
		w.mu.Lock()
		w.space.Broadcast()
		w.mu.Unlock()
	}
}

// adjustLimitLocked sets the soft memory limit to the config's plus
// excess, if the limit in effect is the config's (or one this writer set):
// a limit the user chose (GOMEMLIMIT) is left alone. w.memMu must be held.
func (w *Writer) adjustLimitLocked(excess int64) {
	set := w.opts.SetMemoryLimit
	if set == nil {
		set = debug.SetMemoryLimit
	}
	base := w.cfg.MemoryLimit()
	cur := set(-1)
	if cur != base && cur != w.limitSet {
		return
	}
	want := base + excess
	if want == cur {
		return
	}
	set(want)
	w.limitSet = want
}

// KeyIndexLocation says where a keyed table's key index lives, for
// reports (floe table describe).
const KeyIndexLocation = "heap of the process writing the table (floe ingest), built from the table's files when it opens the table; counted in writer.memory-budget"

// EstimateKeyIndexBytes is the memory of the key index of a keyed table
// with schema sc and keys live keys, as the writer builds it: 16-byte
// slots when the key is one column of an integer, date, time or timestamp
// type (its encoding is 8 bytes), 24-byte ones otherwise, 80% full.
func EstimateKeyIndexBytes(sc *iceberg.Schema, keys int64) int64 {
	narrow := false
	if ids := sc.IdentifierFieldIDs; len(ids) == 1 {
		if f, ok := sc.FindFieldByID(ids[0]); ok {
			switch f.Type.(type) {
			case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimeType,
				iceberg.TimestampType, iceberg.TimestampTzType:
				narrow = true
			}
		}
	}
	return keyIndexBytes(keys, narrow)
}
