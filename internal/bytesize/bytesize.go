// Package bytesize is the size type of Floe's configuration (512KiB,
// 64MiB, 1GiB, 100MB), shared by the components whose Config has sizes;
// writer.Bytes is its public name. It lives apart from writer so that
// packages the writer imports (compaction) can use it too.
package bytesize

import (
	"errors"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
)

// Bytes is a size in bytes; in YAML a number or a string with a unit:
// 512KiB, 64MiB, 1GiB, 100MB.
type Bytes int64

// UnmarshalYAML parses a size. Its error keeps n, so a config loader can
// name the line and key.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlkeys.Invalid(n, "want a size: a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)")
	}
	v, err := Parse(n.Value)
	if err != nil {
		return yamlkeys.Invalid(n, err.Error())
	}
	*b = v
	return nil
}

// Parse parses "64MiB", "1GB", "1048576".
func Parse(s string) (Bytes, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("size " + strconv.Quote(s) + ": want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)")
	}
	return Bytes(v * mult), nil
}
