package writer

// The persistent key index's files. A keyed table's committed index
// (keyindex_view.go) keeps its slot arrays in files under
// <dir>/<table uuid>/, memory-mapped shared: they are not Go heap (the
// collector neither scans nor counts them) and the kernel writes them
// back and evicts them under memory pressure. Beside them, index.meta
// says which committed snapshot the slots describe:
//
//	index.meta       JSON, with a CRC-32C of it on the first line: format
//	                 version, table uuid, the snapshot (tag), key field ids
//	                 and types, the fingerprint seed, per slot table its
//	                 file, capacity, key count and checksum, and the
//	                 table's committed data files with their numbers
//	narrow.<gen>     the slots of 8-byte keys (16 bytes a slot)
//	wide.<gen>       the slots of other keys (24 bytes a slot)
//	undo             the undo journal of the change under way
//	                 (keyindex_journal.go)
//	lock             flock'ed while a process uses the directory
//
// index.meta is replaced (write, rename) after every change of the
// committed index: a commit, a compaction step, a delete merge. A slot
// file replaced by a larger one (the table grew) is removed once a meta
// no longer names it. A table directory unchanged for a week and not
// locked (a dropped or recreated table's) is removed by the next keyed
// table that opens its index under the same root.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	indexMetaName    = "index.meta"
	indexMetaVersion = 1
)

// indexMeta is index.meta.
type indexMeta struct {
	Version  int         `json:"version"`
	Table    string      `json:"table-uuid"`
	Snapshot int64       `json:"snapshot-id"`
	KeyIDs   []int       `json:"key-field-ids"`
	KeyTypes []string    `json:"key-types"`
	Seed     uint64      `json:"seed"`
	Narrow   slotMeta    `json:"narrow"`
	Wide     slotMeta    `json:"wide"`
	NumFiles int         `json:"num-files"`
	Files    []indexFile `json:"files"`
	Writer   string      `json:"writer-id"`
	// Generation is drawn at random for every meta written; the undo
	// journal names the generation its records undo to.
	Generation uint64 `json:"generation,omitempty"`
}

type slotMeta struct {
	File string `json:"file"`
	Cap  int    `json:"cap"`
	N    int    `json:"n"`
	Sum  uint64 `json:"sum"`
}

// indexFile is a committed data file of the table and its number (the
// upper half of the locations that point into it).
type indexFile struct {
	No   int    `json:"no"`
	Path string `json:"path"`
}

// indexFiles is a table's index directory, locked by this process.
type indexFiles struct {
	dir  string
	log  *slog.Logger
	lock *os.File
	gen  int
	// cur is the file of each slot table; maps its mapping.
	cur      map[string]string
	maps     map[*uint64][]byte
	obsolete []string // files to remove once the meta no longer names them
	failed   error    // a mapping failed: the index is in the heap, not persisted
	// jr is the undo journal (nil when it cannot be mapped: a crash
	// during a change then rebuilds), metaGen the generation of the meta
	// on disk.
	jr      *undoJournal
	metaGen uint64
}

// openIndexFiles locks dir (creating it); it fails when another process
// holds it.
func openIndexFiles(dir string, log *slog.Logger) (*indexFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create key index directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("lock key index directory %s: %w", dir, err)
	}
	f := &indexFiles{dir: dir, log: log, lock: lock, cur: map[string]string{}, maps: map[*uint64][]byte{}}
	if f.jr, err = openJournal(dir); err != nil {
		log.Warn("key index: no undo journal; a crash while the index changes makes the next start rebuild it", "dir", dir, "err", err)
	} else {
		f.jr.onFail = func(err error) {
			log.Warn("key index: the undo journal cannot grow; the index is rebuilt if the process stops before its next commit", "dir", dir, "err", err)
			f.removeMeta()
		}
	}
	return f, nil
}

// staleIndexAge is how long a table's index directory may go unchanged
// before another table's writer on the host removes it: a live writer
// rewrites index.meta at every commit, so only a dropped or recreated
// table's directory (or one whose writer has not run for that long,
// which then rebuilds its index at its next start) is that old.
const staleIndexAge = 7 * 24 * time.Hour

// pruneStaleIndexDirs removes the table directories under root, other
// than self, whose newest entry is older than staleIndexAge and whose
// lock no process holds (a held lock is a live writer: left alone).
// Failures are logged, never returned: pruning only frees disk.
func pruneStaleIndexDirs(root, self string, now time.Time, log *slog.Logger) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || dir == self || !olderThan(dir, now.Add(-staleIndexAge)) {
			continue
		}
		lock, err := lockFile(filepath.Join(dir, "lock"))
		if err != nil {
			continue
		}
		err = os.RemoveAll(dir)
		_ = lock.Close()
		if err != nil {
			log.Warn("key index: cannot remove a stale index directory", "dir", dir, "err", err)
			continue
		}
		log.Info("key index: removed a stale index directory (its table has not been written here for a week)", "dir", dir)
	}
}

// olderThan reports whether dir and every entry in it were last modified
// before t.
func olderThan(dir string, t time.Time) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	if st, err := os.Stat(dir); err != nil || !st.ModTime().Before(t) {
		return false
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(t) {
			return false
		}
	}
	return true
}

// alloc implements slotAlloc: a new file, mapped.
func (f *indexFiles) alloc(name string, words int) []uint64 {
	if f.failed == nil {
		f.gen++
		file := name + "." + strconv.Itoa(f.gen)
		s, b, err := mapSlotFile(filepath.Join(f.dir, file), words, true)
		if err == nil {
			f.maps[&s[0]] = b
			if old := f.cur[name]; old != "" {
				f.obsolete = append(f.obsolete, old)
			}
			f.cur[name] = file
			return s
		}
		f.failed = err
		f.log.Warn("key index: cannot map its file; the index stays in the heap and is rebuilt at the next start", "dir", f.dir, "err", err)
	}
	return make([]uint64, words)
}

// spillAlloc is the storage of a spilled layer's slot tables
// (indexView.spill): mapped files of the index directory, each unlinked
// as soon as it is mapped — a crash leaves nothing to clean up, and the
// persisted index never names them — and unmapped when the layer is
// folded or dropped.
type spillAlloc struct{ f *indexFiles }

// alloc implements slotAlloc; a file that cannot be mapped leaves the
// table in the heap.
func (a spillAlloc) alloc(_ string, words int) []uint64 {
	f := a.f
	if f.failed == nil && words > 0 {
		f.gen++
		path := filepath.Join(f.dir, "spill."+strconv.Itoa(f.gen))
		s, b, err := mapSlotFile(path, words, true)
		_ = os.Remove(path)
		if err == nil {
			f.maps[&s[0]] = b
			return s
		}
		f.log.Warn("key index: cannot map a spill file; the layer stays in the heap", "dir", f.dir, "err", err)
	}
	return make([]uint64, words)
}

func (a spillAlloc) release(name string, s []uint64) { a.f.release(name, s) }
func (a spillAlloc) mapped(s []uint64) bool          { return a.f.mapped(s) }
func (a spillAlloc) drop(s []uint64)                 { a.f.evict(s) }
func (a spillAlloc) sequential(s []uint64, on bool)  { a.f.sequential(s, on) }

// release implements slotAlloc.
func (f *indexFiles) release(_ string, s []uint64) {
	if len(s) == 0 {
		return
	}
	if b, ok := f.maps[&s[0]]; ok {
		delete(f.maps, &s[0])
		unmap(b)
	}
}

// mapped reports whether s is a mapping of this directory.
func (f *indexFiles) mapped(s []uint64) bool {
	if f == nil || len(s) == 0 {
		return false
	}
	_, ok := f.maps[&s[0]]
	return ok
}

// evict drops the resident pages of s from the process (they stay in the
// page cache, dirty ones are written back): the spill of an index over
// the memory budget.
func (f *indexFiles) evict(s []uint64) {
	if len(s) == 0 {
		return
	}
	if b, ok := f.maps[&s[0]]; ok {
		dontNeed(b)
	}
}

// sequential implements pager: s is read in slot order (on) or at random
// (off, the default of a mapping). A random read fault of a page not in
// the page cache would otherwise read ahead and map a window of pages
// around it: at 10M keys, with the index's pages evicted from the page
// cache, an interval's updates kept 100–150 MiB of it resident (r8).
func (f *indexFiles) sequential(s []uint64, on bool) {
	if len(s) == 0 {
		return
	}
	if b, ok := f.maps[&s[0]]; ok {
		advise(b, on)
	}
}

// drop implements pager: evict.
func (f *indexFiles) drop(s []uint64) { f.evict(s) }

// readMeta reads and checks index.meta.
func (f *indexFiles) readMeta() (*indexMeta, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, indexMetaName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no index file")
		}
		return nil, err
	}
	sum, body, ok := strings.Cut(string(b), "\n")
	if !ok {
		return nil, errors.New("index.meta is corrupt: no checksum line")
	}
	want, err := strconv.ParseUint(sum, 16, 32)
	if err != nil || uint32(want) != crc32.Checksum([]byte(body), crcTable) {
		return nil, errors.New("index.meta is corrupt: checksum mismatch")
	}
	var m indexMeta
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, fmt.Errorf("index.meta is corrupt: %w", err)
	}
	if m.Version != indexMetaVersion {
		return nil, fmt.Errorf("index.meta has format version %d, want %d", m.Version, indexMetaVersion)
	}
	return &m, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// mapExisting maps a slot file of the meta, checking its size.
func (f *indexFiles) mapExisting(name, file string, words int) ([]uint64, error) {
	if file == "" || strings.ContainsAny(file, `/\`) {
		return nil, fmt.Errorf("bad slot file name %q", file)
	}
	s, b, err := mapSlotFile(filepath.Join(f.dir, file), words, false)
	if err != nil {
		return nil, err
	}
	f.maps[&s[0]] = b
	f.cur[name] = file
	if g, err := strconv.Atoi(strings.TrimPrefix(file, name+".")); err == nil && g > f.gen {
		f.gen = g
	}
	return s, nil
}

// writeMeta replaces index.meta with m, then removes the slot files no
// meta names any more.
func (f *indexFiles) writeMeta(m *indexMeta) error {
	m.Generation = rand.Uint64() | 1
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(f.dir, indexMetaName+".tmp")
	data := fmt.Sprintf("%08x\n%s", crc32.Checksum(body, crcTable), body)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("write key index meta: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, indexMetaName)); err != nil {
		return fmt.Errorf("write key index meta: %w", err)
	}
	f.metaGen = m.Generation
	if f.jr != nil {
		f.jr.reset(m.Generation)
	}
	f.removeObsolete()
	return nil
}

// journal starts journaling the changes of the tables of x that are in
// the files the meta on disk names (after writeMeta, or a validation).
func (f *indexFiles) journal(x *keyIndex) {
	for _, t := range []*slotTable{&x.narrow, &x.wide} {
		t.jr = nil
		if f.jr != nil && f.metaGen != 0 && f.mapped(t.slots) {
			t.jr = f.jr
		}
	}
}

// removeMeta invalidates the directory's index (before a rebuild into
// new files, or when the index cannot be persisted).
func (f *indexFiles) removeMeta() {
	f.metaGen = 0
	if err := os.Remove(filepath.Join(f.dir, indexMetaName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.log.Warn("key index: cannot remove its meta file", "err", err)
	}
}

// reset unmaps the slot files, removes them and the meta: a rebuild
// follows.
func (f *indexFiles) reset() {
	f.removeMeta()
	f.metaGen = 0
	if f.jr != nil {
		f.jr.reset(0)
	}
	for p, b := range f.maps {
		unmap(b)
		delete(f.maps, p)
	}
	clear(f.cur)
	f.removeStale()
}

// removeStale removes every slot file that is not in use.
func (f *indexFiles) removeStale() {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	inUse := map[string]bool{"lock": true, indexMetaName: true, journalName: true}
	for _, c := range f.cur {
		inUse[c] = true
	}
	for _, e := range ents {
		if !inUse[e.Name()] {
			_ = os.Remove(filepath.Join(f.dir, e.Name()))
		}
	}
	f.obsolete = nil
}

func (f *indexFiles) removeObsolete() {
	for _, o := range f.obsolete {
		_ = os.Remove(filepath.Join(f.dir, o))
	}
	f.obsolete = nil
}

// close unmaps every slot file and unlocks the directory.
func (f *indexFiles) close() {
	for p, b := range f.maps {
		unmap(b)
		delete(f.maps, p)
	}
	if f.jr != nil {
		f.jr.close()
		f.jr = nil
	}
	if f.lock != nil {
		_ = f.lock.Close()
		f.lock = nil
	}
}
