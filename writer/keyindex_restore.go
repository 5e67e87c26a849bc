package writer

// Opening a keyed table's key index: validate the persisted one and catch
// it up, or build it from the table.
//
// The persisted index (keyindex_file.go) is tagged with snapshot T and
// lists the committed data files it knows, with their numbers. Its slots
// hold T's keys: a process that died while changing them (folding a
// commit, moving a compaction step's entries, catching up) left an undo
// journal of that change, which is replayed first (keyindex_journal.go).
// It is used when
//
//   - index.meta is intact (its CRC) and of this format version;
//   - it belongs to this table (uuid) and its key columns and types are
//     the table's (a changed key needs another index);
//   - T is the table's current snapshot or one of its ancestors (not a
//     snapshot rolled back, nor one of another table's history);
//   - every slot file has its size, and its slots (after the journal's
//     undo) the checksum and key count the meta recorded (the disk did
//     not lose or corrupt pages, the machine did not lose the page cache).
//
// Then it is caught up to the current snapshot S, whatever happened
// between T and S (this writer's commits, its compaction, the daemon's,
// another engine's appends and position deletes):
//
//  1. the known files keep their numbers; a file of the meta no longer in
//     S is gone;
//  2. every entry that points into a gone file, beyond the known files,
//     or at a position S deletes is removed: its row is not live;
//  3. the keys of the live rows of every data file of S the meta does not
//     know (added after T: new rows, compaction outputs) are added; a key
//     already there is a duplicate, handled as a build handles it.
//
// After step 2 every entry points at a row live in S with its key; a key
// live in S whose row is in a known file was not touched since T (a
// change would have deleted the row), so its entry is there; every other
// live key is in a new file and step 3 adds it. The cost is a scan of the
// slots and a read of the new files' key columns, not of the table.
// Anything else rebuilds from the table, as every open did before, and
// logs why.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// Ways a key index was opened (IndexInfo.Opened).
const (
	IndexOpenedValidated = "validated" // the persisted index, caught up
	IndexOpenedRebuilt   = "rebuilt"   // built from the table's files
	IndexOpenedEmpty     = "empty"     // the table has no snapshot
)

// IndexInfo describes a keyed table's key index.
type IndexInfo struct {
	// Keys is the number of live keys.
	Keys int
	// HeapBytes is the index's memory in the Go heap (the uncommitted
	// changes, and the whole index when it is not persistent).
	HeapBytes int64
	// MappedBytes is the size of its memory-mapped slot files.
	MappedBytes int64
	// Dir is where the persistent index lives; "" when it is in the heap.
	Dir string
	// Opened is how it was opened (IndexOpened*), Snapshot the snapshot a
	// validated index was tagged with, Reason why it was rebuilt.
	Opened   string
	Snapshot int64
	Reason   string
	// CaughtUpFiles are the data files read to catch a validated index
	// up.
	CaughtUpFiles int
}

// Index describes the table's key index.
func (k *KeyedTable) Index() IndexInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	info := k.indexInfo
	info.Keys = k.index.Len()
	info.HeapBytes = k.index.HeapBytes()
	info.MappedBytes = k.index.MappedBytes()
	return info
}

// DefaultKeyIndexDir is where keyed tables keep their persistent key
// indexes when KeyedOptions.IndexDir is empty: floe/index under the
// user's cache directory (~/.cache/floe/index on Linux).
func DefaultKeyIndexDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "floe", "index"), nil
}

// openIndexFiles opens the table's index directory, or returns nil (the
// index then lives in the heap) saying why.
func (k *KeyedTable) openIndexDir(tbl *icetable.Table) (*indexFiles, string) {
	if k.opts.HeapIndex {
		return nil, "KeyedOptions.HeapIndex"
	}
	root := k.opts.IndexDir
	if root == "" {
		var err error
		if root, err = DefaultKeyIndexDir(); err != nil {
			return nil, "no cache directory: " + err.Error()
		}
	}
	f, err := openIndexFiles(filepath.Join(root, tbl.Metadata().TableUUID().String()), k.log)
	if err != nil {
		return nil, err.Error()
	}
	pruneStaleIndexDirs(root, f.dir, k.w.opts.Now(), k.log)
	return f, ""
}

// openIndex opens the table's key index as of tbl's current snapshot:
// the persisted one, validated and caught up, or one built from the
// table. k.files, k.liveDels and k.lastSnap follow.
func (k *KeyedTable) openIndex(ctx context.Context, tbl *icetable.Table) error {
	start := k.w.opts.Now()
	// The key the index is built for; a later change of the table's key
	// (AlterSchema) leaves the index describing this one, and a restart
	// rebuilds it.
	k.indexKeyIDs, k.indexKeyTypes = slices.Clone(k.keyIDs), k.keyTypes()
	k.lastSnap = noSnapshot
	if k.idx == nil {
		var why string
		if k.idx, why = k.openIndexDir(tbl); k.idx == nil {
			k.log.Info("key index in the heap, rebuilt at every start", "reason", why)
		}
	}
	snap := tbl.CurrentSnapshot()
	var tf *tableFiles
	if snap != nil {
		k.lastSnap = snap.SnapshotID
		var err error
		if tf, err = scanTable(ctx, tbl, snap); err != nil {
			return err
		}
		k.liveDels = tf.dels
	}
	info := IndexInfo{}
	if k.idx != nil {
		info.Dir = k.idx.dir
		base, meta, reason := k.validIndex(tbl)
		if base != nil {
			k.index = k.newView(base)
			n, err := k.catchUp(ctx, tbl, tf, meta)
			if err != nil {
				return err
			}
			info.Opened, info.Snapshot, info.CaughtUpFiles = IndexOpenedValidated, meta.Snapshot, n
			k.indexInfo = info
			k.w.m.indexOpens.WithLabelValues(k.name, info.Opened).Inc()
			k.w.m.indexOpenSecs.Observe(k.w.opts.Now().Sub(start).Seconds())
			k.log.Info("key index validated", "dir", k.idx.dir, "snapshot", meta.Snapshot, "current", k.lastSnap,
				"keys", k.index.Len(), "caught_up_files", n, "took", k.w.opts.Now().Sub(start))
			return k.persistIndexLocked()
		}
		info.Reason = reason
		// The old files go; the build maps new ones.
		k.idx.reset()
	}
	base := k.newBase()
	if err := k.buildIndex(ctx, tbl, tf, base); err != nil {
		return err
	}
	took := k.w.opts.Now().Sub(start)
	k.w.m.indexRebuilds.WithLabelValues(k.name).Inc()
	k.w.m.indexSeconds.Observe(took.Seconds())
	info.Opened = IndexOpenedRebuilt
	if snap == nil {
		info.Opened = IndexOpenedEmpty
	}
	k.indexInfo = info
	k.w.m.indexOpens.WithLabelValues(k.name, info.Opened).Inc()
	k.w.m.indexOpenSecs.Observe(took.Seconds())
	if snap != nil {
		k.log.Info("key index built from the table", "keys", k.index.Len(), "files", len(k.files), "took", took,
			"dir", info.Dir, "reason", info.Reason)
	}
	return k.persistIndexLocked()
}

// newBase returns an empty committed index, mapped when the table has an
// index directory.
func (k *KeyedTable) newBase() *keyIndex {
	x := newKeyIndex()
	if k.idx != nil {
		x.narrow.mem, x.narrow.name = k.idx, "narrow"
		x.wide.mem, x.wide.name = k.idx, "wide"
	}
	return x
}

// keyTypes are the key columns' Arrow types, for the meta.
func (k *KeyedTable) keyTypes() []string {
	out := make([]string, len(k.keyCols))
	for i, c := range k.keyCols {
		out[i] = k.schema.Field(c).Type.String()
	}
	return out
}

// validIndex maps the persisted index if it is valid for tbl, or says
// why not.
func (k *KeyedTable) validIndex(tbl *icetable.Table) (*keyIndex, *indexMeta, string) {
	m, err := k.idx.readMeta()
	if err != nil {
		return nil, nil, err.Error()
	}
	switch {
	case m.Table != tbl.Metadata().TableUUID().String():
		return nil, nil, "the index belongs to table " + m.Table
	case !slices.Equal(m.KeyIDs, k.keyIDs) || !slices.Equal(m.KeyTypes, k.keyTypes()):
		return nil, nil, fmt.Sprintf("the key changed: the index has fields %v %v, the table %v %v", m.KeyIDs, m.KeyTypes, k.keyIDs, k.keyTypes())
	}
	if m.Snapshot != noSnapshot {
		found := false
		for s := range table.CurrentAncestors(tbl.Metadata()) {
			if s.SnapshotID == m.Snapshot {
				found = true
				break
			}
		}
		if !found {
			return nil, nil, fmt.Sprintf("its snapshot %d is not in the table's current history", m.Snapshot)
		}
	}
	x, undone, why := k.idx.open(m)
	if x == nil {
		return nil, nil, why
	}
	if undone > 0 {
		k.log.Info("key index: undid the slot changes of an interrupted change", "slots", undone)
	}
	return x, m, ""
}

// catchUp brings the validated index k.index.base from meta's snapshot to
// tf's (nil: no snapshot), as the file comment describes; it returns the
// number of data files it read.
func (k *KeyedTable) catchUp(ctx context.Context, tbl *icetable.Table, tf *tableFiles, meta *indexMeta) (int, error) {
	known := make(map[string]int, len(meta.Files))
	for _, f := range meta.Files {
		known[f.Path] = f.No
	}
	k.files = make([]*dataFileState, meta.NumFiles)
	for i := range k.files {
		k.files[i] = &dataFileState{gone: true}
	}
	var added []dataRef
	if tf != nil {
		for _, d := range tf.data {
			if no, ok := known[d.df.FilePath()]; ok && no >= 0 && no < len(k.files) && k.files[no].df == nil {
				k.files[no] = tf.fileState(d)
			} else {
				added = append(added, d)
			}
		}
	}
	// 2: entries of rows not live in the snapshot go.
	base := k.index.base
	removed := 0
	// In one pass, in place: a compaction between T and S (or one the
	// process died in, undone) drops millions of entries, whose list
	// would not fit the budget.
	for _, t := range []*slotTable{&base.narrow, &base.wide} {
		removed += t.sweep(func(loc uint64) bool {
			n := int(loc >> 32)
			if n >= len(k.files) || k.files[n].gone {
				return true
			}
			_, dead := slices.BinarySearch(k.files[n].dead, uint32(loc))
			return dead
		})
	}
	if len(added) == 0 {
		return 0, nil
	}
	// 3: the new files' keys.
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return 0, err
	}
	dupes := 0
	for _, d := range added {
		k.files = append(k.files, tf.fileState(d))
		n, err := k.addKeys(ctx, fsys, len(k.files)-1, nil)
		if err != nil {
			return 0, err
		}
		dupes += n
	}
	if dupes > 0 {
		k.log.Error("keyed table had duplicate live keys; the older rows are deleted with the next commit", "duplicates", dupes)
	}
	k.dropIndexPages()
	k.log.Debug("key index caught up", "removed", removed, "added_files", len(added))
	return len(added), nil
}

// persistIndexLocked writes index.meta for the committed index: its
// snapshot is k.lastSnap, its files the committed ones. k.io must be held
// (the committed index changes only under it); a failure is logged and
// the persisted index dropped (the next start rebuilds).
func (k *KeyedTable) persistIndexLocked() error {
	if k.idx == nil {
		return nil
	}
	if k.idx.failed != nil {
		k.idx.removeMeta()
		return nil
	}
	staged := make(map[string]bool, len(k.staged))
	for _, df := range k.staged {
		staged[df.FilePath()] = true
	}
	k.mu.Lock()
	base := k.index.base
	m := &indexMeta{
		Version: indexMetaVersion, Table: k.tbl.Metadata().TableUUID().String(), Snapshot: k.lastSnap,
		KeyIDs: k.indexKeyIDs, KeyTypes: k.indexKeyTypes, Seed: base.seed,
		Narrow:   slotMeta{File: k.idx.cur["narrow"], Cap: base.narrow.cap, N: base.narrow.n, Sum: base.narrow.sum},
		Wide:     slotMeta{File: k.idx.cur["wide"], Cap: base.wide.cap, N: base.wide.n, Sum: base.wide.sum},
		NumFiles: len(k.files), Writer: k.w.cfg.WriterID,
	}
	for n, f := range k.files {
		if !f.gone && f.df != nil && !staged[f.path] {
			m.Files = append(m.Files, indexFile{No: n, Path: f.path})
		}
	}
	k.mu.Unlock()
	if err := k.idx.writeMeta(m); err != nil {
		k.log.Warn("key index: cannot persist it; the next start rebuilds it", "err", err)
		k.idx.removeMeta()
	}
	// The next change is journaled against this meta.
	k.mu.Lock()
	k.idx.journal(base)
	k.mu.Unlock()
	// The pages this commit touched leave the process, over the budget or
	// not: they are outside the Go heap and its soft limit
	// (keyed_memory.go).
	k.idx.evict(base.narrow.slots)
	k.idx.evict(base.wide.slots)
	return nil
}

// closeIndexLocked releases the index's files; k.mu must be held. The
// committed index keeps its counts but no slots.
func (k *KeyedTable) closeIndexLocked() {
	if k.idx == nil {
		return
	}
	if k.index != nil {
		k.index.release()
		for _, t := range []*slotTable{&k.index.base.narrow, &k.index.base.wide} {
			if t.mem != nil {
				t.slots, t.cap, t.mem = nil, 0, nil
			}
		}
	}
	k.idx.close()
	k.idx = nil
}

// PersistedKeyIndex describes a table's persisted key index on this host
// (floe table describe).
type PersistedKeyIndex struct {
	// Dir is the table's index directory.
	Dir string `json:"dir"`
	// Found: the directory holds a valid index.meta; Snapshot is the
	// snapshot it describes, Keys its keys, Bytes its slot files' size,
	// Writer the writer that wrote it.
	Found    bool   `json:"found"`
	Snapshot int64  `json:"snapshot-id,omitempty"`
	Keys     int    `json:"keys,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	Writer   string `json:"writer-id,omitempty"`
	// Problem says why Found is false.
	Problem string `json:"problem,omitempty"`
}

// ReadPersistedKeyIndex reports the persisted key index of the table with
// uuid tableUUID under root (empty: DefaultKeyIndexDir), without taking
// it from the process that uses it.
func ReadPersistedKeyIndex(root, tableUUID string) PersistedKeyIndex {
	if root == "" {
		var err error
		if root, err = DefaultKeyIndexDir(); err != nil {
			return PersistedKeyIndex{Problem: err.Error()}
		}
	}
	f := &indexFiles{dir: filepath.Join(root, tableUUID)}
	out := PersistedKeyIndex{Dir: f.dir}
	m, err := f.readMeta()
	if err != nil {
		out.Problem = err.Error()
		return out
	}
	out.Found, out.Snapshot, out.Keys, out.Writer = true, m.Snapshot, m.Narrow.N+m.Wide.N, m.Writer
	out.Bytes = int64(m.Narrow.Cap)*16 + int64(m.Wide.Cap)*24
	return out
}

// open maps the slot files m names, undoes the change the process died
// in (keyindex_journal.go) and checks the slots against m; it returns the
// index and how many slot changes it undid, or nil and why the slots are
// not usable.
func (f *indexFiles) open(m *indexMeta) (*keyIndex, int, string) {
	undone := 0
	x := newKeyIndex()
	x.seed = m.Seed
	tables := []struct {
		t    *slotTable
		name string
		sm   slotMeta
	}{{&x.narrow, "narrow", m.Narrow}, {&x.wide, "wide", m.Wide}}
	for _, st := range tables {
		st.t.mem, st.t.name = f, st.name
		if st.sm.Cap == 0 {
			continue
		}
		s, err := f.mapExisting(st.name, st.sm.File, st.sm.Cap*st.t.stride)
		if err != nil {
			return nil, 0, err.Error()
		}
		st.t.slots, st.t.cap = s, st.sm.Cap
	}
	// A change the process died in is undone (keyindex_journal.go).
	if f.jr != nil && m.Generation != 0 {
		var err error
		if undone, err = f.jr.undo(m.Generation, &x.narrow, &x.wide); err != nil {
			return nil, 0, err.Error()
		}
	}
	for _, st := range tables {
		if st.sm.Cap == 0 {
			continue
		}
		sum, n := st.t.checksum()
		if sum != st.sm.Sum || n != st.sm.N {
			return nil, 0, fmt.Sprintf("the %s slots do not match their checksum (%d keys, want %d): a crash while they changed, or a damaged file", st.name, n, st.sm.N)
		}
		st.t.sum, st.t.n = sum, n
	}
	// The catch-up's changes are journaled against this meta.
	f.metaGen = m.Generation
	f.journal(x)
	// Files of a change that never got its meta (a grown or detached
	// table's) go.
	f.removeStale()
	return x, undone, ""
}
