package writer

// The undo journal of a persisted key index. The committed index's slots
// change in place, in their mapped files, after every commit (a fold), a
// compaction step (its entries move to the output's rows) and a restart's
// catch-up; index.meta is rewritten after each change. A process killed
// during a change used to leave slots that matched neither the meta before
// it nor the one after, so the next start rebuilt the index from the
// table: 90 s at 50M keys, when a compaction step's move of ~1 GiB of
// slots was under way (issue 17).
//
// Every write to a slot of a persisted table is now preceded by a record
// of the slot's old words in the file "undo" of the index directory,
// itself mapped shared: a store to it is in the page cache, which a killed
// process leaves intact, before the store to the slot that follows it
// (the record count is stored atomically, after the record and before the
// slot). index.meta carries a random generation, and the journal the
// generation of the meta its records undo to; writing a meta empties the
// journal and stamps it with the new generation. At the next start, a
// journal whose generation is the meta's is replayed backwards — each slot
// gets back the words it had before its first change — and the slots then
// match the meta's checksum: the index is validated and caught up (a
// commit the change belonged to is caught up like any other), not
// rebuilt. A journal of another generation (the process died after
// writing the meta, before emptying the journal) is ignored.
//
// The journal is bounded: a change that writes more than journalMaxRecords
// slots (the first move of a large snapshot load's rows, a catch-up that
// drops millions of entries) copies its table to a new file first
// (slotTable.detach) and goes on there without records; the meta names the
// old file until the change ends, and the records so far undo it. The
// journal only guards against a crashed process: a lost machine may lose
// page-cache writes in any order, which the checksum still catches (then
// a rebuild).
//
// Layout (little-endian uint64 words): magic, generation, record count,
// reserved; then records of four words: table (top bit: wide) | slot
// number, and the slot's old words (two for a narrow slot, three for a
// wide one).

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

const (
	journalName    = "undo"
	journalMagic   = 0x6f646e75656f6c66 // "floeundo"
	journalHeader  = 4                  // words
	journalRecord  = 4                  // words
	journalInitial = 1 << 14            // records (512 KiB)
	journalWide    = 1 << 63
)

// journalMaxRecords is how many records a change writes before its table
// is copied instead (32 MiB of journal); a variable for tests.
var journalMaxRecords = 1 << 20

// journalDropEvery: the journal's pages leave the process (they stay in
// the page cache) every this many records, and after every meta.
const journalDropEvery = 1 << 16

// undoJournal is a table index directory's undo journal, mapped.
type undoJournal struct {
	path  string
	b     []byte
	words []uint64
	cap   int // records
	// failed: the journal cannot grow; the index directory's meta is
	// removed (onFail) and no more records are written until the next
	// meta.
	failed bool
	onFail func(error)
}

// openJournal maps dir's journal, creating it when it is missing or not a
// journal.
func openJournal(dir string) (*undoJournal, error) {
	j := &undoJournal{path: dir + string(os.PathSeparator) + journalName}
	st, err := os.Stat(j.path)
	size := int64(0)
	if err == nil {
		size = st.Size()
	}
	if size >= (journalHeader+journalRecord)*8 && (size/8-journalHeader)%journalRecord == 0 {
		if err := j.mapFile(int(size/8), false); err == nil && j.words[0] == journalMagic {
			return j, nil
		}
		j.unmap()
	}
	if err := j.mapFile(journalHeader+journalInitial*journalRecord, true); err != nil {
		return nil, err
	}
	j.words[0] = journalMagic
	return j, nil
}

func (j *undoJournal) mapFile(words int, create bool) error {
	s, b, err := mapSlotFile(j.path, words, create)
	if err != nil {
		return fmt.Errorf("key index journal: %w", err)
	}
	j.b, j.words, j.cap = b, s, (words-journalHeader)/journalRecord
	return nil
}

func (j *undoJournal) unmap() {
	if j.b != nil {
		unmap(j.b)
		j.b, j.words, j.cap = nil, nil, 0
	}
}

// grow doubles the journal's file and maps it again; the records written
// are in the file.
func (j *undoJournal) grow() error {
	words := journalHeader + 2*j.cap*journalRecord
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(words) * 8)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	old := j.b
	if err := j.mapFile(words, false); err != nil {
		return err
	}
	unmap(old)
	return nil
}

// count is the number of records.
func (j *undoJournal) count() int { return int(atomic.LoadUint64(&j.words[2])) }

// full reports whether a change has written journalMaxRecords records.
func (j *undoJournal) full() bool { return j.failed || j.count() >= journalMaxRecords }

// save records slot i of table wide with its words s, before they change.
func (j *undoJournal) save(wide bool, i int, s []uint64) {
	if j.failed {
		return
	}
	n := j.count()
	if n == j.cap {
		if err := j.grow(); err != nil {
			j.failed = true
			j.onFail(err)
			return
		}
	}
	r := j.words[journalHeader+n*journalRecord : journalHeader+(n+1)*journalRecord]
	r[0] = uint64(i)
	if wide {
		r[0] |= journalWide
	}
	copy(r[1:], s)
	// The record is in the page cache before the count says so, and the
	// count before the slot changes: sync/atomic stores are not reordered
	// with the ordinary stores around them.
	atomic.StoreUint64(&j.words[2], uint64(n+1))
	if (n+1)%journalDropEvery == 0 {
		dontNeed(j.b)
	}
}

// reset empties the journal for the meta of generation gen, just written:
// the count first, so that a crash between the two stores leaves nothing
// to undo.
func (j *undoJournal) reset(gen uint64) {
	atomic.StoreUint64(&j.words[2], 0)
	atomic.StoreUint64(&j.words[1], gen)
	j.failed = false
	dontNeed(j.b)
}

// errJournal is a journal that cannot be replayed onto the slots.
var errJournal = errors.New("the undo journal does not fit the slot files")

// undo replays the records of generation gen backwards onto narrow and
// wide, and returns how many it replayed (0: none of that generation).
func (j *undoJournal) undo(gen uint64, narrow, wide *slotTable) (int, error) {
	if j.words[0] != journalMagic || j.words[1] != gen {
		return 0, nil
	}
	n := j.count()
	if n > j.cap {
		return 0, errJournal
	}
	for r := n - 1; r >= 0; r-- {
		rec := j.words[journalHeader+r*journalRecord : journalHeader+(r+1)*journalRecord]
		t, i := narrow, int(rec[0]&^journalWide)
		if rec[0]&journalWide != 0 {
			t = wide
		}
		if i >= t.cap {
			return 0, errJournal
		}
		copy(t.slots[i*t.stride:(i+1)*t.stride], rec[1:1+t.stride])
	}
	return n, nil
}

// close unmaps the journal.
func (j *undoJournal) close() { j.unmap() }
