//go:build linux || darwin || freebsd

package writer

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapSlotFile maps a file of words uint64s, shared and writable; create
// makes (or truncates) it, zeroed; otherwise its size must be words*8.
func mapSlotFile(path string, words int, create bool) ([]uint64, []byte, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }()
	size := int64(words) * 8
	if create {
		if err := f.Truncate(size); err != nil {
			return nil, nil, err
		}
	} else if st, err := f.Stat(); err != nil {
		return nil, nil, err
	} else if st.Size() != size {
		return nil, nil, fmt.Errorf("slot file %s has %d bytes, want %d", path, st.Size(), size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	// Random access by default: no readahead on a fault (keyindex_file.go).
	advise(b, false)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), words), b, nil
}

// advise tells the kernel how b is read: in order (a pass over every
// slot: readahead helps) or at random (lookups: a fault reads and maps
// the one page, not a readahead window).
func advise(b []byte, sequential bool) {
	a := unix.MADV_RANDOM
	if sequential {
		a = unix.MADV_SEQUENTIAL
	}
	_ = unix.Madvise(b, a)
}

func unmap(b []byte) { _ = syscall.Munmap(b) }

// dontNeed drops the pages of b from the process; a shared file mapping
// keeps them in the page cache.
func dontNeed(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }

// lockFile opens path and takes an exclusive, non-blocking flock on it.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("in use by another process: %w", err)
	}
	return f, nil
}
