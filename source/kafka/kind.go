package kafka

import "github.com/floe-lake/floe/source"

// Kind is the Kafka source kind: "type: kafka" with a kafka: section
// (Config).
func Kind() source.Kind {
	return source.NewKind("kafka", DefaultConfig, func(c Config, o source.Options) (source.Source, error) {
		return New(c, Options{Logger: o.Logger, Registerer: o.Registerer})
	})
}
