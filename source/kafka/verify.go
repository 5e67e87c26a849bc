package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// This file exports what verification (floe verify kafka) needs of a
// source's configuration, without running the source.

// ClientOptions are the franz-go options that connect to cfg's brokers
// (seeds, client id, TLS, SASL), for a client that reads the topics
// directly. cfg must have had ApplyDefaults.
func ClientOptions(cfg *Config) ([]kgo.Opt, error) { return connOpts(cfg) }

// TableNames lists the tables the route writes, sorted and without
// duplicates (the dead-letter table not included).
func (r Route) TableNames() []string { return r.tables() }
