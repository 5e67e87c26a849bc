package mysql

import (
	"fmt"
	"strconv"
	"strings"
)

// PartitionBinlog is the one partition of a MySQL source's positions: the
// server's binlog.
const PartitionBinlog = "binlog"

// A binlog position is stored as an int64: the binlog file's sequence
// number (the digits after the last dot of its name, mariadb-bin.000042 is
// 42) in the high 32 bits and the byte offset in that file in the low 32.
// Positions so encoded order as the binlog does, across files. The file
// name's base (mariadb-bin) is not stored: it is read from the server on
// start (SHOW MASTER STATUS). A stored position is always the end of a
// transaction (or of a DDL statement): the offset where the next event
// starts.
type binlogPos struct {
	seq    uint32
	offset uint32
}

func (p binlogPos) encode() int64 { return int64(p.seq)<<32 | int64(p.offset) }

func decodePos(v int64) binlogPos {
	return binlogPos{seq: uint32(v >> 32), offset: uint32(v)}
}

func (p binlogPos) String() string { return fmt.Sprintf("%06d:%d", p.seq, p.offset) }

// fileSeq parses the sequence number of a binlog file name.
func fileSeq(name string) (uint32, error) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return 0, fmt.Errorf("binlog file name %q has no .NNNNNN suffix", name)
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("binlog file name %q: %w", name, err)
	}
	return uint32(n), nil
}

// fileBase is the name of a binlog file without its sequence number.
func fileBase(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// fileName is the binlog file of seq, named like example (a name the
// server reported).
func fileName(example string, seq uint32) string {
	digits := 6
	if i := strings.LastIndexByte(example, '.'); i >= 0 && len(example)-i-1 > digits {
		digits = len(example) - i - 1
	}
	return fmt.Sprintf("%s.%0*d", fileBase(example), digits, seq)
}
