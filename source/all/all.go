// Package all lists Floe's built-in source kinds. A program that reads
// sources: from a config resolves the entries with Registry; adding a
// kind is a package of its own and one line here.
package all

import (
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/source/mysql"
)

// Kinds returns the built-in kinds: gen, kafka, mysql.
func Kinds() []source.Kind {
	return []source.Kind{gen.Kind(), kafka.Kind(), mysql.Kind()}
}

// Registry returns a new registry of the built-in kinds; register more on
// it as needed.
func Registry() *source.Registry {
	return source.NewRegistry(Kinds()...)
}
