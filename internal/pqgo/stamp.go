package pqgo

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
)

// The nested leaves whose levels follow from a few bits per row — a
// primitive inside structs only, the element of a top-level list of
// primitives — are written as the flat columns are: values stamped from
// templates (raw.go) with their repetition and definition levels, rather
// than walked one accessor call per value (writeNested's walk). Both
// write the same file (TestFastStructValues, TestFastListValues).

// structsOnly reports whether the leaf is a primitive inside structs
// only (no list or map on its path): one value per row, at repetition
// level 0, its definition level the count of non-null optional steps.
func (lf *leafCol) structsOnly() bool {
	if lf.maxRep != 0 || len(lf.steps) < 2 || lf.steps[len(lf.steps)-1].kind != stepPrim {
		return false
	}
	opt := 0
	for _, st := range lf.steps {
		if st.kind != stepPrim && st.kind != stepStruct {
			return false
		}
		if st.optional {
			opt++
		}
	}
	return opt == lf.maxDef
}

// writeStructs is writeNested for a structsOnly leaf with the arrays
// along its path bound: the values are stamped from templates as
// writeFlat stamps them, instead of walked one call per value.
func (e *colEnc) writeStructs(s sel) error {
	_, src, err := e.leafSource(e.arrs[len(e.arrs)-1])
	if err != nil {
		return err
	}
	col := e.lf.idx
	// nullAt[d] is the null at definition level d; optional lists the
	// arrays whose nulls end a row early, in path order.
	nullAt := make([]rawValue, e.lf.maxDef)
	for d := range nullAt {
		nullAt[d] = asRaw(parquet.Value{}.Level(0, d, col))
	}
	var optional []arrow.Array
	nulls := false
	for d, st := range e.lf.steps {
		if st.optional {
			optional = append(optional, e.arrs[d])
			nulls = nulls || mayHaveNulls(e.arrs[d])
		}
	}
	tmpl := asRaw(e.lf.template(col))
	if cap(e.u64) < valueChunk {
		e.u64 = make([]uint64, valueChunk)
		e.ptrs = make([]*byte, valueChunk)
	}
	n := s.n()
	for start := 0; start < n; start += valueChunk {
		end := min(start+valueChunk, n)
		m := end - start
		u, p := e.u64[:m], e.ptrs[:m]
		src.extract(u, p, s, start, end)
		vals := e.vals[:m]
		raw := asRawSlice(vals)
	rows:
		for k := range raw {
			if nulls {
				i := s.at(start + k)
				for d, a := range optional {
					if a.IsNull(i) {
						raw[k] = nullAt[d]
						continue rows
					}
				}
			}
			t := tmpl
			if src.bytes {
				t.ptr = p[k]
			}
			t.u64 = u[k]
			raw[k] = t
		}
		if _, err := e.cw.WriteRowValues(vals); err != nil {
			return err
		}
	}
	return nil
}

// primList reports whether the leaf is the element of a top-level list
// of primitives, whose levels writeList stamps.
func (lf *leafCol) primList() bool {
	if len(lf.steps) != 2 || lf.steps[0].kind != stepList || lf.steps[1].kind != stepPrim || lf.maxRep != 1 {
		return false
	}
	def := 1
	for _, st := range lf.steps {
		if st.optional {
			def++
		}
	}
	return def == lf.maxDef && lf.steps[0].rep == 1
}

// writeList is writeNested for a primList leaf with its arrays bound: the
// values the walk would make, in the same order and handed to the column
// writer in the same chunks (whole rows, once valueChunk values are
// reached), stamped from templates.
func (e *colEnc) writeList(s sel) error {
	lst, ok := e.arrs[0].(array.ListLike)
	if !ok {
		return fmt.Errorf("column %s: expected a list array, got %s", e.lf.path, e.arrs[0].DataType())
	}
	leaf, src, err := e.leafSource(e.arrs[1])
	if err != nil {
		return err
	}
	col := e.lf.idx
	listOpt, elemOpt := e.lf.steps[0].optional, e.lf.steps[1].optional && mayHaveNulls(leaf)
	listNulls := listOpt && mayHaveNulls(lst)
	def := 0 // the list's definition level when present
	if listOpt {
		def = 1
	}
	null := func(rep, def int) rawValue { return asRaw(parquet.Value{}.Level(rep, def, col)) }
	nullList, empty := null(0, 0), null(0, def)
	nullElem := [2]rawValue{null(0, def+1), null(1, def+1)}
	tmpl := [2]rawValue{asRaw(e.lf.template(col)), asRaw(e.lf.template(col))}
	tmpl[0].rep = 0
	var u [1]uint64
	var p [1]*byte
	n := s.n()
	for k := 0; k < n; k++ {
		i := s.at(k)
		switch start, end := lst.ValueOffsets(i); {
		case listNulls && lst.IsNull(i):
			e.vals = append(e.vals, parquet.Value{})
			asRawSlice(e.vals)[len(e.vals)-1] = nullList
		case start == end:
			e.vals = append(e.vals, parquet.Value{})
			asRawSlice(e.vals)[len(e.vals)-1] = empty
		default:
			for j := start; j < end; j++ {
				r := 0
				if j > start {
					r = 1
				}
				e.vals = append(e.vals, parquet.Value{})
				raw := &asRawSlice(e.vals)[len(e.vals)-1]
				if elemOpt && leaf.IsNull(int(j)) {
					*raw = nullElem[r]
					continue
				}
				src.extract(u[:], p[:], sel{lo: int(j), hi: int(j) + 1}, 0, 1)
				t := tmpl[r]
				if src.bytes {
					t.ptr = p[0]
				}
				t.u64 = u[0]
				*raw = t
			}
		}
		if len(e.vals) >= valueChunk {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	return e.flush()
}

// mayHaveNulls reports whether the array has a validity bitmap. It stands
// in for NullN() > 0 on arrays several column workers share (a struct
// along the paths of its leaves): arrow-go computes an unknown null count
// lazily and stores it, a write that races between workers. An array with
// a bitmap but no nulls only costs the per-row IsNull checks.
func mayHaveNulls(a arrow.Array) bool { return a.NullBitmapBytes() != nil }

// leafSource is the leaf's array (an extension array's storage) and the
// source its values are stamped from.
func (e *colEnc) leafSource(leaf arrow.Array) (arrow.Array, *source, error) {
	if ext, ok := leaf.(array.ExtensionArray); ok {
		leaf = ext.Storage()
	}
	src, err := flatSource(e.lf, leaf)
	return leaf, src, err
}
