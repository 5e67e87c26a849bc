package writer

// Memory accounting of the keyed tables.
//
// Everything a keyed table holds that grows with its keys counts in the
// writer's memory budget (Config.MemoryBudget): its key index — the slots
// of a persistent index mapped from its file, the uncommitted changes in
// the heap or, once a layer is full, spilled to a mapped file
// (keyindex_view.go), the whole index when it is in the heap —
// and the memory of its compaction step in flight (the output's keys and
// the rewrite's batches). The rows buffered by all tables may take what
// these leave of the budget, but never less than FlushBytes, so appends
// and keyed changes go on (the back-pressure is the smaller buffer: more,
// smaller flushes).
//
// When they need more than the budget minus FlushBytes the writer is over
// budget and logs a WARN once (and an INFO once it fits again), and the
// mapped index slots no longer count against the rows. Over the budget
// or not, the resident pages of a mapped index are dropped from the
// process (madvise DONTNEED; they stay in the page cache, the kernel
// writes dirty ones back and evicts them under pressure) after every
// commit, as a pass in slot order goes through it (a fold, a rehash, a
// compaction step's move: slotTable.page, keyed_compact.go), and every
// 256 random accesses (lookups, changes: slotTable.touch), each of which
// may map 64 KiB (the kernel's fault-around; an interval's updates made
// up to 170 MiB resident). What this leaves resident (16 MiB and a pass's
// 1 MiB per slot table, ResidentBytes) always counts in the budget. The
// soft memory limit governs the Go heap only, and at 10M keys the 191 MiB
// of slots just fit the default budget, so kept resident they came on top
// of a heap at the limit (686 MiB peak). Heap memory beyond the
// budget is held back by the smaller row buffer alone: the soft memory
// limit is never raised (the indexes hold no pointers, so the collector
// does not scan them; a persistent index keeps the heap small).

import "github.com/apache/iceberg-go"

// reportIndexLocked adds the change of the table's index memory to the
// writer's totals; k.mu must be held or k not yet shared.
func (k *KeyedTable) reportIndexLocked() {
	heap, mapped, res := int64(0), int64(0), int64(0)
	if k.index != nil && !k.closed {
		heap, mapped, res = k.index.HeapBytes(), k.index.MappedBytes(), k.index.ResidentBytes()
	}
	dh, dm, dr := heap-k.indexReported, mapped-k.mappedReported, res-k.residentReported
	if dh != 0 || dm != 0 || dr != 0 {
		k.indexReported, k.mappedReported, k.residentReported = heap, mapped, res
		k.w.addMemoryResident(dh, dm, dr, 0)
	}
}

// indexGaugesLocked sets the index metrics and the writer's accounting;
// k.mu must be held or k not yet shared.
func (k *KeyedTable) indexGaugesLocked() {
	k.w.m.indexKeys.WithLabelValues(k.name).Set(float64(k.index.Len()))
	k.w.m.indexBytes.WithLabelValues(k.name).Set(float64(k.index.HeapBytes() + k.index.MappedBytes()))
	k.w.m.indexMemBytes.WithLabelValues(k.name, "heap").Set(float64(k.index.HeapBytes()))
	k.w.m.indexMemBytes.WithLabelValues(k.name, "mapped").Set(float64(k.index.MappedBytes()))
	k.reportIndexLocked()
}

// IndexBytes is the memory of the table's key index (heap and mapped),
// as floe_writer_keyed_index_bytes reports it.
func (k *KeyedTable) IndexBytes() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.index.HeapBytes() + k.index.MappedBytes()
}

// IndexBytes is the memory of all open keyed tables' key indexes (heap
// and mapped), as counted in the memory budget.
func (w *Writer) IndexBytes() int64 {
	w.memMu.Lock()
	defer w.memMu.Unlock()
	return w.indexBytes + w.mappedBytes
}

// rowBudgetLocked is what the budget leaves for buffered rows; w.mu must
// be held.
func (w *Writer) rowBudgetLocked() int64 {
	return max(int64(w.cfg.FlushBytes), int64(w.cfg.MemoryBudget)-w.indexShare.Load())
}

// addIndexBytes changes the heap indexes' total by d.
func (w *Writer) addIndexBytes(d int64) { w.addMemory(d, 0, 0) }

// addMemory changes the totals of heap index memory (heap), mapped index
// slots (mapped) and compaction steps (compact), and handles the budget's
// transitions.
func (w *Writer) addMemory(heap, mapped, compact int64) {
	w.addMemoryResident(heap, mapped, 0, compact)
}

// addMemoryResident is addMemory that also changes the total of what the
// mapped indexes may hold resident (resident, part of mapped): spilled or
// not, that much of their slots is in the process, so it always counts
// against the rows.
func (w *Writer) addMemoryResident(heap, mapped, resident, compact int64) {
	w.memMu.Lock()
	defer w.memMu.Unlock()
	w.indexBytes += heap
	w.mappedBytes += mapped
	w.residentBytes += resident
	w.compactBytes += compact
	avail := int64(w.cfg.MemoryBudget) - int64(w.cfg.FlushBytes)
	need := w.indexBytes + w.mappedBytes + w.compactBytes
	over := need > avail
	spill := over && w.mappedBytes > 0
	if over != w.overBudget {
		w.overBudget = over
		if over {
			w.log.Warn("key indexes exceed the writer's memory budget: mapped index pages are spilled (left to the page cache and disk), buffered rows are held to flush-bytes; raise writer.memory-budget for speed",
				"index_heap_bytes", w.indexBytes, "index_mapped_bytes", w.mappedBytes, "compaction_bytes", w.compactBytes,
				"memory_budget", int64(w.cfg.MemoryBudget), "flush_bytes", int64(w.cfg.FlushBytes))
		} else {
			w.log.Info("key indexes fit the writer's memory budget again", "index_heap_bytes", w.indexBytes,
				"index_mapped_bytes", w.mappedBytes, "memory_budget", int64(w.cfg.MemoryBudget))
		}
	}
	w.spilling.Store(spill)
	share := w.indexBytes + w.compactBytes
	if spill {
		share += w.residentBytes
	} else {
		share += w.mappedBytes
	}
	w.indexShare.Store(share)
	// Less memory leaves room for rows: wake writers waiting for it.
	if heap < 0 || mapped < 0 || resident < 0 || compact < 0 {
		w.mu.Lock()
		w.space.Broadcast()
		w.mu.Unlock()
	}
}

// KeyIndexLocation says where a keyed table's key index lives, for
// reports (floe table describe).
const KeyIndexLocation = "file per table under the writer's cache directory (~/.cache/floe/index/<table-uuid>), memory-mapped by the process writing the table (floe ingest), validated against the table's snapshot at every start; counted in writer.memory-budget, spilled to the page cache above it"

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
