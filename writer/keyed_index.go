package writer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// tableFiles are the live files of a table's snapshot, as the key index
// needs them.
type tableFiles struct {
	data    []dataRef          // oldest first
	dels    []iceberg.DataFile // position-delete files
	deleted map[string][]int64 // data file path → deleted positions, sorted
	rows    int64              // records of the data files
}

type dataRef struct {
	df  iceberg.DataFile
	seq int64
}

// scanTable lists the live data and position-delete files of snap and
// reads the deletes.
func scanTable(ctx context.Context, tbl *icetable.Table, snap *icetable.Snapshot) (*tableFiles, error) {
	tf := &tableFiles{deleted: map[string][]int64{}}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	mans, err := snap.Manifests(fsys)
	if err != nil {
		return nil, fmt.Errorf("read manifest list: %w", err)
	}
	for _, m := range mans {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			df := e.DataFile()
			switch df.ContentType() {
			case iceberg.EntryContentData:
				tf.data = append(tf.data, dataRef{df: df, seq: e.SequenceNum()})
				tf.rows += df.Count()
			case iceberg.EntryContentPosDeletes:
				if icetable.IsDeletionVector(df) {
					return nil, fmt.Errorf("delete file %s is a deletion vector, which keyed writes do not read yet", df.FilePath())
				}
				tf.dels = append(tf.dels, df)
			default:
				return nil, fmt.Errorf("delete file %s holds equality deletes (written by another engine); keyed writes need a table without them: compact it first", df.FilePath())
			}
		}
	}
	// Each position-delete file is read once, grouped by data file.
	for _, d := range tf.dels {
		if err := readPositionDeletes(ctx, fsys, d.FilePath(), tf.deleted); err != nil {
			return nil, fmt.Errorf("read position deletes %s: %w", d.FilePath(), err)
		}
	}
	for p, dels := range tf.deleted {
		slices.Sort(dels)
		tf.deleted[p] = slices.Compact(dels)
	}
	// Oldest first, so that should a key be live twice the newer row wins.
	slices.SortFunc(tf.data, func(a, b dataRef) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.df.FilePath(), b.df.FilePath()))
	})
	return tf, nil
}

// fileState is the state of data file d of tf.
func (tf *tableFiles) fileState(d dataRef) *dataFileState {
	path := d.df.FilePath()
	st := &dataFileState{path: path, df: d.df, rows: d.df.Count()}
	for _, p := range tf.deleted[path] {
		st.dead = append(st.dead, uint32(p))
	}
	return st
}

// addKeys reads the keys of the live rows of data file number fileNo
// (k.files) into the committed index; a key already there is a duplicate
// live row: the newer (this one) is kept, the older deleted with the next
// commit. It returns the number of duplicates.
//
// The keys are placed in batches (bulkBatch), each sorted into slot
// order, so that placing one is a pass through the index that drops its
// pages as it goes (bulkPlace): a 50M-key index placed in arrival order
// — every key at a random slot — kept all of its 958 MiB resident until
// the build's end.
func (k *KeyedTable) addKeys(ctx context.Context, fsys iceio.IO, fileNo int, reserve func(narrow bool)) (int, error) {
	st := k.files[fileNo]
	dupes := 0
	base := k.index.base
	// No drops per random access (slotTable.touch): bulkPlace drops the
	// pages as its pass goes.
	base.narrow.bulk, base.wide.bulk = true, true
	defer func() { base.narrow.bulk, base.wide.bulk = false, false }()
	batch := make([]bulkEntry, 0, min(int(st.rows), bulkBatch))
	err := readKeys(ctx, fsys, st.path, k.keyIDs, k.schema, k.keyCols, func(key string, pos int64) {
		if _, ok := slices.BinarySearch(st.dead, uint32(pos)); ok {
			return
		}
		if reserve != nil {
			reserve(len(key) == 8)
			reserve = nil
		}
		t, h := base.slot(key)
		batch = append(batch, bulkEntry{order: slotOrder(h), h: h, loc: uint64(fileNo)<<32 | uint64(pos), wide: t == &base.wide})
		if len(batch) == bulkBatch {
			dupes += k.bulkPlace(batch)
			batch = batch[:0]
		}
	})
	if err != nil {
		return 0, fmt.Errorf("read keys of %s: %w", st.path, err)
	}
	return dupes + k.bulkPlace(batch), nil
}

// bulkEntry is a key a build read, not yet placed.
type bulkEntry struct {
	order uint64 // slotOrder
	h     [2]uint64
	loc   uint64
	wide  bool
}

// bulkBatch is how many keys a build places at once: 1M (40 MiB).
const bulkBatch = 1 << 20

// bulkDropBytes is how much of a mapped table a placing pass goes
// through between two drops of its resident pages.
const bulkDropBytes = 16 << 20

// bulkPlace places batch in the committed index (keyIndex.place),
// staging each duplicate's older row for deletion.
func (k *KeyedTable) bulkPlace(batch []bulkEntry) int {
	return k.index.base.place(batch, func(prev uint64) { k.stagedDels = append(k.stagedDels, prev) })
}

// place sets batch's keys in slot order (a key's entries in the order of
// their locations: the later wins, dup gets the earlier's) and drops the
// mapped pages every bulkDropBytes of a table passed, so that at most
// that much of a table is resident when it returns. It returns the
// duplicates.
func (x *keyIndex) place(batch []bulkEntry, dup func(prev uint64)) int {
	// Within one file (a batch is of one: addKeys) a later row has the
	// larger location, so ordering equal keys by it keeps their order.
	slices.SortFunc(batch, func(a, b bulkEntry) int {
		if a.wide != b.wide {
			if a.wide {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.loc, b.loc))
	})
	dupes := 0
	var t *slotTable
	from := 0 // the home slot of the last drop
	for _, e := range batch {
		if nt := x.table(e.wide); nt != t {
			t, from = nt, 0
			t.pass(true)
		}
		if home := t.home(e.h); (home-from)*t.stride*8 >= bulkDropBytes {
			from = home
			if p, ok := t.mem.(pager); ok {
				p.drop(t.slots)
			}
		}
		if prev, ok := t.get(e.h); ok {
			dupes++
			dup(prev)
		}
		t.set(e.h, e.loc)
	}
	// What the pass left resident (at most bulkDropBytes a table) goes
	// with the build's end (dropIndexPages).
	x.narrow.pass(false)
	x.wide.pass(false)
	return dupes
}

// newView is the index view over base, its full sealed layers spilled
// to the index directory when the index is persistent.
func (k *KeyedTable) newView(base *keyIndex) *indexView {
	v := newIndexView(base)
	if k.idx != nil {
		v.spillTo = spillAlloc{k.idx}
	}
	return v
}

// buildIndex reads the key columns of every live data file of tf, with
// its position deletes applied, into the committed index base.
func (k *KeyedTable) buildIndex(ctx context.Context, tbl *icetable.Table, tf *tableFiles, base *keyIndex) error {
	k.index = k.newView(base)
	k.files = nil
	if tf == nil {
		return nil
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return err
	}
	dupes := 0
	reserved := false
	for _, d := range tf.data {
		k.files = append(k.files, tf.fileState(d))
		n, err := k.addKeys(ctx, fsys, len(k.files)-1, func(narrow bool) {
			if !reserved {
				// Sized once for every row, so the build never regrows it.
				base.reserve(int(tf.rows), narrow)
				reserved = true
			}
		})
		if err != nil {
			return err
		}
		dupes += n
	}
	if dupes > 0 {
		k.log.Error("keyed table had duplicate live keys; the older rows are deleted with the next commit", "duplicates", dupes)
	}
	k.dropIndexPages()
	return nil
}

func openParquet(ctx context.Context, fsys iceio.IO, path string) (*pqarrow.FileReader, func(), error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, nil, err
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10, Parallel: false}, memory.DefaultAllocator)
	if err != nil {
		_ = pf.Close()
		return nil, nil, err
	}
	return fr, func() { _ = pf.Close() }, nil
}

// leafByFieldID finds the leaf column with field id id, or by name.
func leafByFieldID(fr *pqarrow.FileReader, id int, name string) int {
	sc := fr.ParquetReader().MetaData().Schema
	for i := 0; i < sc.NumColumns(); i++ {
		if int(sc.Column(i).SchemaNode().FieldID()) == id {
			return i
		}
	}
	for i := 0; i < sc.NumColumns(); i++ {
		if sc.Column(i).Path() == name {
			return i
		}
	}
	return -1
}

func readPositionDeletes(ctx context.Context, fsys iceio.IO, path string, out map[string][]int64) error {
	fr, closeFn, err := openParquet(ctx, fsys, path)
	if err != nil {
		return err
	}
	defer closeFn()
	pathCol := leafByFieldID(fr, 2147483546, "file_path")
	posCol := leafByFieldID(fr, 2147483545, "pos")
	if pathCol < 0 || posCol < 0 {
		return errors.New("not a position-delete file: no file_path or pos column")
	}
	rr, err := fr.GetRecordReader(ctx, []int{pathCol, posCol}, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		var paths interface {
			Value(int) string
			Len() int
		}
		switch c := rec.Column(0).(type) {
		case *array.String:
			paths = c
		case *array.LargeString:
			paths = c
		default:
			return fmt.Errorf("file_path column is %s", c.DataType())
		}
		pos, ok := rec.Column(1).(*array.Int64)
		if !ok {
			return fmt.Errorf("pos column is %s", rec.Column(1).DataType())
		}
		for i := 0; i < paths.Len(); i++ {
			p := paths.Value(i)
			out[p] = append(out[p], pos.Value(i))
		}
	}
	return rr.Err()
}

// readKeys calls fn with the key and position of every row of a data file.
func readKeys(ctx context.Context, fsys iceio.IO, path string, keyIDs []int, sc *arrow.Schema, keyCols []int, fn func(key string, pos int64)) error {
	fr, closeFn, err := openParquet(ctx, fsys, path)
	if err != nil {
		return err
	}
	defer closeFn()
	leaves := make([]int, len(keyIDs))
	for i, id := range keyIDs {
		leaves[i] = leafByFieldID(fr, id, sc.Field(keyCols[i]).Name)
		if leaves[i] < 0 {
			return fmt.Errorf("no column for identifier field %d", id)
		}
	}
	// The reader returns columns in leaf order; map them back to key order.
	sorted := slices.Clone(leaves)
	slices.Sort(sorted)
	order := make([]int, len(leaves))
	for i, l := range leaves {
		order[i], _ = slices.BinarySearch(sorted, l)
	}
	rr, err := fr.GetRecordReader(ctx, slices.Compact(sorted), nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	var pos int64
	var buf []byte
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			buf = buf[:0]
			for _, o := range order {
				if buf, err = appendKeyValue(buf, rec.Column(o), i); err != nil {
					return err
				}
			}
			fn(string(buf), pos)
			pos++
		}
	}
	return rr.Err()
}

// appendKey appends the encoded key of row i of rec.
func appendKey(dst []byte, rec arrow.RecordBatch, cols []int, i int) ([]byte, error) {
	var err error
	for _, c := range cols {
		if dst, err = appendKeyValue(dst, rec.Column(c), i); err != nil {
			return nil, fmt.Errorf("key column %s: %w", rec.ColumnName(c), err)
		}
	}
	return dst, nil
}

// appendKeyValue encodes one key value so that equal values of any
// physical width (int and long, decimals of any precision) encode equally
// and a sequence of values decodes unambiguously.
func appendKeyValue(dst []byte, a arrow.Array, i int) ([]byte, error) {
	if a.IsNull(i) {
		return nil, errors.New("null key")
	}
	switch c := a.(type) {
	case *array.Int8:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int16:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int32:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int64:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint8:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint16:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint32:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Date32:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Time64:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Timestamp:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Boolean:
		if c.Value(i) {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case *array.Decimal128:
		v := c.Value(i)
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.HighBits()))
		return binary.BigEndian.AppendUint64(dst, v.LowBits()), nil
	case *array.String:
		return appendBytesKey(dst, []byte(c.Value(i))), nil
	case *array.LargeString:
		return appendBytesKey(dst, []byte(c.Value(i))), nil
	case *array.Binary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.LargeBinary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.FixedSizeBinary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.Float32:
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(c.Value(i))), nil
	case *array.Float64:
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(c.Value(i))), nil
	}
	return nil, fmt.Errorf("unsupported key type %s", a.DataType())
}

func appendBytesKey(dst, v []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// FormatKey renders an encoded key for messages.
func FormatKey(key string) string {
	if len(key) == 8 {
		return strconv.FormatInt(int64(binary.BigEndian.Uint64([]byte(key))), 10)
	}
	return fmt.Sprintf("%x", bytes.TrimSpace([]byte(key)))
}
