package reader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/floe-lake/floe/table"
)

// Cursor is a consumer's durable place in a table's history.
type Cursor struct {
	// Table is the table read, namespace.table.
	Table string `json:"table"`
	// SnapshotID is the last snapshot whose changes the consumer's output
	// holds; reading resumes after it. 0: before the table's first snapshot.
	SnapshotID int64 `json:"snapshot-id"`
	// Output and OutputOffset describe the consumer's output file, when it
	// writes one: its path, and its length once the changes up to
	// SnapshotID were written. A consumer truncates the output to
	// OutputOffset before it resumes, so rows written after the cursor was
	// stored are not written twice.
	Output       string `json:"output,omitempty"`
	OutputOffset int64  `json:"output-offset"`
	// Format of the output (jsonl, csv).
	Format string `json:"format,omitempty"`
	// Mode of the read (append, changelog).
	Mode Mode `json:"mode,omitempty"`
	// Updated is when the cursor was stored.
	Updated time.Time `json:"updated"`
}

// CursorStore keeps one cursor.
type CursorStore interface {
	// Load returns the stored cursor; found is false when none was stored.
	Load(ctx context.Context) (c Cursor, found bool, err error)
	// Save stores c atomically: a later Load returns the old or the new
	// cursor, never a mix, whenever the process dies.
	Save(ctx context.Context, c Cursor) error
}

func decodeCursor(b []byte, where string) (Cursor, error) {
	var c Cursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Cursor{}, fmt.Errorf("decode cursor %s: %w", where, err)
	}
	return c, nil
}

// FileCursorStore keeps a cursor in a local file, replaced atomically on
// every Save: written to a temporary file in the same directory, synced,
// renamed over the old one, and the directory synced.
type FileCursorStore struct {
	path string
}

// NewFileCursorStore returns a store for the file at path.
func NewFileCursorStore(path string) *FileCursorStore { return &FileCursorStore{path: path} }

// Path is the cursor file's path.
func (s *FileCursorStore) Path() string { return s.path }

// Load reads the cursor file.
func (s *FileCursorStore) Load(context.Context) (Cursor, bool, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("read cursor: %w", err)
	}
	c, err := decodeCursor(b, s.path)
	return c, err == nil, err
}

// Save replaces the cursor file.
func (s *FileCursorStore) Save(_ context.Context, c Cursor) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cursor: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(name, s.path)
	}
	if werr != nil {
		_ = os.Remove(name)
		return fmt.Errorf("save cursor %s: %w", s.path, werr)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save cursor %s: sync directory: %w", s.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ObjectCursorStore keeps a cursor as one object in the warehouse (or any
// location an iceberg-go IO reaches). An object store replaces an object
// atomically on PUT. Keep cursors outside table directories, where an
// orphan-file cleaner would remove them: e.g. <warehouse>/_floe/cursors/.
type ObjectCursorStore struct {
	fs       iceio.WriteFileIO
	location string
}

// NewObjectCursorStore returns a store for the object at location; fsys
// must be able to write files.
func NewObjectCursorStore(fsys iceio.IO, location string) (*ObjectCursorStore, error) {
	w, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("cursor store %s: %T cannot write files", location, fsys)
	}
	return &ObjectCursorStore{fs: w, location: location}, nil
}

// Load reads the cursor object.
func (s *ObjectCursorStore) Load(context.Context) (Cursor, bool, error) {
	f, err := s.fs.Open(s.location)
	if errors.Is(err, fs.ErrNotExist) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("open cursor %s: %w", s.location, err)
	}
	b, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("read cursor %s: %w", s.location, err)
	}
	c, err := decodeCursor(b, s.location)
	return c, err == nil, err
}

// Save writes the cursor object.
func (s *ObjectCursorStore) Save(_ context.Context, c Cursor) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode cursor: %w", err)
	}
	if err := s.fs.WriteFile(s.location, b); err != nil {
		return fmt.Errorf("save cursor %s: %w", s.location, err)
	}
	return nil
}

// CursorPartition is the partition of a cursor kept as a table.Positions
// entry: UpstreamSource(table) → {"snapshot": id}.
const CursorPartition = "snapshot"

// UpstreamSource is the position-map source id under which a consumer that
// writes a table keeps its cursor on the upstream table it reads.
func UpstreamSource(upstream string) string { return "upstream:" + upstream }

// CursorFromPositions returns the cursor a downstream table holds for
// upstream, from its committed position map (table.CurrentPositions);
// found is false when the consumer never committed one.
func CursorFromPositions(pm table.PositionMap, upstream string) (snapshotID int64, found bool) {
	id, ok := pm[UpstreamSource(upstream)][CursorPartition]
	return id, ok
}

// CursorAdvance is the table.Advance that moves a consumer's cursor from
// base (found: whether the downstream table held a cursor) to next, to be
// committed with the consumer's output in one table.Committer commit under
// the source UpstreamSource(upstream). A concurrent consumer that moved the
// cursor first fences the commit (table.ErrFenced).
func CursorAdvance(base int64, found bool, next int64) table.Advance {
	adv := table.Advance{Next: table.Positions{CursorPartition: next}}
	if found {
		adv.Base = table.Positions{CursorPartition: base}
	}
	return adv
}
