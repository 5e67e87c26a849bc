package gen

import "github.com/floe-lake/floe/source"

// Kind is the generator's source kind: "type: gen" with a gen: section
// (Config).
func Kind() source.Kind {
	return source.NewKind("gen", DefaultConfig, func(c Config, _ source.Options) (source.Source, error) {
		return New(c)
	})
}
