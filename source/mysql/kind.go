package mysql

import "github.com/floe-lake/floe/source"

// Kind is the MySQL/MariaDB CDC source kind: "type: mysql" with a mysql:
// section (Config).
func Kind() source.Kind {
	return source.NewKind("mysql", DefaultConfig, func(c Config, o source.Options) (source.Source, error) {
		return New(c, Options{Logger: o.Logger, Registerer: o.Registerer})
	})
}
