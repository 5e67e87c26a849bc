//go:build !(linux || darwin || freebsd)

package writer

import (
	"errors"
	"os"
)

var errNoMmap = errors.New("memory-mapped key indexes need Linux, macOS or FreeBSD")

func mapSlotFile(string, int, bool) ([]uint64, []byte, error) { return nil, nil, errNoMmap }

func unmap([]byte) {}

func dontNeed([]byte) {}

func advise([]byte, bool) {}

func lockFile(string) (*os.File, error) { return nil, errNoMmap }
