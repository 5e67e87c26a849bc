package kafka

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Environment variables that override settings of every Kafka source.
const (
	// EnvBrokers is a comma-separated broker list used when the config
	// names none (integration/kafka.sh prints it).
	EnvBrokers = "FLOE_KAFKA_BROKERS"
	// EnvSASLUsername and EnvSASLPassword override sasl.username and
	// sasl.password.
	EnvSASLUsername = "FLOE_KAFKA_SASL_USERNAME"
	EnvSASLPassword = "FLOE_KAFKA_SASL_PASSWORD"
	// EnvInstanceID is the instance-id used when the config sets none:
	// one value per process, set where the process is started.
	EnvInstanceID = "FLOE_KAFKA_INSTANCE_ID"
)

// Value formats of a route.
const (
	// FormatJSON is one JSON object per record, mapped to the table's
	// columns by field name.
	FormatJSON = "json"
	// FormatCanal is Alibaba Canal's flat JSON message: {"data": [rows],
	// "old": [...], "type": "INSERT|UPDATE|DELETE", "pkNames", "es", "ts",
	// "database", "table", "isDdl"}; each row of data becomes one row.
	FormatCanal = "canal-json"
	// FormatDebezium is Debezium's JSON change event, with or without the
	// schema envelope: {"before", "after", "op": "c|u|d|r", "ts_ms",
	// "source"}; the after image (the before image for deletes) becomes
	// the row.
	FormatDebezium = "debezium-json"
)

// Write modes of a route.
const (
	// ModeAppend appends every row a record carries (for canal-json and
	// debezium-json: the change log, with _cdc_op).
	ModeAppend = "append"
	// ModeUpsert applies inserts, updates and deletes by key to a table
	// with identifier fields (see the package comment, Upserts).
	ModeUpsert = "upsert"
)

// Metadata column names. A routed table that has a column of one of these
// names gets it filled from the record, whether or not MetadataColumns
// added it.
const (
	ColTopic     = "_kafka_topic"     // string
	ColPartition = "_kafka_partition" // int or long
	ColOffset    = "_kafka_offset"    // long
	ColTimestamp = "_kafka_timestamp" // timestamptz (or timestamp)
	ColKey       = "_kafka_key"       // binary or string
	// ColOp is the change type of a Canal or Debezium row: insert, update,
	// delete or read (a snapshot row).
	ColOp = "_cdc_op" // string
	// ColEventTime is the source database's event time of a Canal (es) or
	// Debezium (source.ts_ms, else ts_ms) row.
	ColEventTime = "_cdc_event_time" // timestamptz
)

// Config configures one Kafka source: the kafka: section of a source in
// floe.yaml. Decoding YAML into a Config starts from DefaultConfig, so absent
// keys keep their defaults; unknown keys are an error.
type Config struct {
	// ID is the source id positions are stored under in the tables
	// (floe.positions.<id>); every process of one group must use the same
	// id. Default: kafka.
	ID string `yaml:"id"`
	// Brokers are the seed brokers, host:port. Default: env
	// FLOE_KAFKA_BROKERS (comma-separated); required.
	Brokers []string `yaml:"brokers"`
	// Group is the consumer group the processes of this source share.
	// Default: floe-<id>.
	Group string `yaml:"group"`
	// ClientID names this client to the brokers. Default: floe.
	ClientID string `yaml:"client-id"`
	// Routes map topics to tables; a topic appears in at most one route.
	// Required.
	Routes []Route `yaml:"routes"`
	// MetadataColumns adds the optional columns _kafka_topic,
	// _kafka_partition, _kafka_offset, _kafka_timestamp and _kafka_key
	// (and, for canal-json and debezium-json routes, _cdc_op and
	// _cdc_event_time) to every routed table. Default: false.
	MetadataColumns bool `yaml:"metadata-columns"`
	// DeadLetterTable receives records that cannot be decoded or mapped,
	// with topic/partition, offset, key, raw value and the reason.
	// Default: floe.dead_letters.
	DeadLetterTable string `yaml:"dead-letter-table"`
	// StartOffset is where a partition no table has a position for starts:
	// earliest or latest. Default: earliest.
	StartOffset string `yaml:"start-offset"`
	// BatchRecords is the most records taken per poll; each poll becomes
	// one batch per table. Default: 10000.
	BatchRecords int `yaml:"batch-records"`
	// FetchMaxBytes bounds one fetch response (fetch.max.bytes); with
	// FetchMaxPartitionBytes and one buffered fetch per broker it bounds
	// the client's memory. Default: 16MiB.
	FetchMaxBytes writer.Bytes `yaml:"fetch-max-bytes"`
	// FetchMaxPartitionBytes bounds one partition in a fetch
	// (max.partition.fetch.bytes). Default: 1MiB.
	FetchMaxPartitionBytes writer.Bytes `yaml:"fetch-max-partition-bytes"`
	// FetchMaxWait is how long a broker may wait for data
	// (fetch.max.wait.ms). Default: 500ms.
	FetchMaxWait time.Duration `yaml:"fetch-max-wait"`
	// SessionTimeout is how long the group waits for a member that
	// stopped heartbeating (a crashed process) before it moves the
	// member's partitions; a process that stops gracefully hands them over
	// at once, unless it is a static member (instance-id). After a SIGKILL
	// the victim's partitions stay idle for about this long whether or not
	// it restarts (TestKafkaRestartTime: 44–48s at Kafka's 45s, 10–12s at
	// 10s), so the default is Kafka's pre-3.0 10s: a spurious expiry costs
	// a rebalance and a re-read of what was buffered, never correctness
	// (a zombie's commit is fenced). Raise it where the network to the
	// brokers has longer hiccups; the brokers bound it
	// (group.min.session.timeout.ms, group.max.session.timeout.ms). This
	// corresponds to the Java session.timeout.ms setting. Default: 10s.
	SessionTimeout time.Duration `yaml:"session-timeout"`
	// RebalanceTimeout bounds a rebalance, including the commit of what
	// is buffered for revoked partitions. This corresponds to the Java
	// max.poll.interval.ms setting (the group's rebalance timeout).
	// Default: 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance-timeout"`
	// HeartbeatInterval is how often the member tells the group it is
	// alive; keep it at most a third of session-timeout. This corresponds
	// to the Java heartbeat.interval.ms setting. Default: 3s.
	HeartbeatInterval time.Duration `yaml:"heartbeat-interval"`

	// Group membership and broker health.

	// InstanceID makes the process a static member of the group under
	// this id (KIP-345): a process that restarts within session-timeout
	// gets its partitions back at once, without a rebalance (1–1.5s from
	// SIGKILL to consuming again in TestKafkaRestartTime, against the
	// session timeout without it). It must be unique among the group's
	// processes and stable across a process's restarts (a StatefulSet pod
	// name); env FLOE_KAFKA_INSTANCE_ID sets it when the config does not.
	// A static member does not leave the group when it stops, even on
	// SIGTERM: its partitions wait session-timeout before they move to the
	// other processes, unless it comes back — which is why it is not the
	// default, besides needing an id per process. This corresponds to the
	// Java group.instance.id setting. Default: "" (dynamic membership).
	InstanceID string `yaml:"instance-id"`
	// PartitionAssignmentStrategy is how the group spreads partitions:
	// cooperative-sticky (a rebalance moves only the partitions that
	// change owner; the others keep being consumed), or the eager sticky,
	// range or roundrobin (every member gives up all its partitions in
	// every rebalance: after a SIGKILL and restart all partitions, not
	// only the victim's, were idle for the session timeout in
	// TestKafkaRestartTime). All processes of a group must use the same
	// (change it with the whole group stopped). This
	// corresponds to the Java partition.assignment.strategy setting.
	// Default: cooperative-sticky.
	PartitionAssignmentStrategy string `yaml:"partition-assignment-strategy"`
	// UnavailableTimeout is how long no broker may answer, or a routed
	// topic may not exist, before the source logs an ERROR naming the
	// brokers or the topic and the cause, and sets floe_kafka_broker_up to
	// 0 or floe_kafka_topic_missing to 1. The source keeps retrying (a
	// topic created later is consumed); an INFO says when the fault is
	// gone. Default: 30s.
	UnavailableTimeout time.Duration `yaml:"unavailable-timeout"`
	// TLS to the brokers. Default: off.
	TLS TLSConfig `yaml:"tls"`
	// SASL authentication to the brokers. Default: none.
	SASL SASLConfig `yaml:"sasl"`
}

// Route sends the records of its topics to one table, or to one of several
// by the value of a top-level field.
type Route struct {
	// Topics whose records this route takes. Required.
	Topics []string `yaml:"topics"`
	// Table is namespace.table; required unless Field is set.
	Table string `yaml:"table"`
	// Field names a top-level field of the record (of the envelope, for
	// canal-json and debezium-json: e.g. table) whose string value picks
	// the table from Tables. Default: none (all records go to Table).
	Field string `yaml:"field"`
	// Tables maps values of Field to tables. A value not listed goes to
	// Table when set, else to the dead-letter table.
	Tables map[string]string `yaml:"tables"`
	// Format of the record values: json, canal-json or debezium-json.
	// Default: json.
	Format string `yaml:"format"`
	// Mode is how rows reach the tables: append (every row a record
	// carries is appended) or upsert (inserts, updates and deletes are
	// applied by key to tables with identifier fields, which must be
	// unpartitioned). Default: append.
	Mode string `yaml:"mode"`
	// Key names the columns that identify a row, for mode upsert: they
	// must be the identifier fields of the route's tables. Required for
	// format json (a record with a null or empty value deletes the key
	// its Kafka key holds); for canal-json and debezium-json it defaults
	// to the identifier fields. Default: none.
	Key []string `yaml:"key"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on; setting any file turns it on too.
	// Default: false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust. Default: the system's.
	CAFile string `yaml:"ca-file"`
	// CertFile and KeyFile are the PEM client certificate and key, for
	// mutual TLS. Default: none.
	CertFile string `yaml:"cert-file"`
	KeyFile  string `yaml:"key-file"`
	// ServerName overrides the name the certificate is checked against.
	// Default: the broker's host.
	ServerName string `yaml:"server-name"`
	// InsecureSkipVerify accepts any certificate. For tests only.
	// Default: false.
	InsecureSkipVerify bool `yaml:"insecure-skip-verify"`
}

func (t TLSConfig) on() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "" disables SASL.
	// Default: "".
	Mechanism string `yaml:"mechanism"`
	// Username; env FLOE_KAFKA_SASL_USERNAME overrides. Default: "".
	Username string `yaml:"username"`
	// Password; env FLOE_KAFKA_SASL_PASSWORD overrides. Never logged.
	// Default: "".
	Password Secret `yaml:"password"`
}

// Secret is a string that does not print: fmt and slog show it redacted.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ID:                     "kafka",
		ClientID:               "floe",
		DeadLetterTable:        "floe.dead_letters",
		StartOffset:            "earliest",
		BatchRecords:           10000,
		FetchMaxBytes:          16 << 20,
		FetchMaxPartitionBytes: 1 << 20,
		FetchMaxWait:           500 * time.Millisecond,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       60 * time.Second,
		HeartbeatInterval:      3 * time.Second,

		PartitionAssignmentStrategy: StrategyCooperativeSticky,
		UnavailableTimeout:          30 * time.Second,
	}
}

// ApplyDefaults fills what the environment and other settings derive:
// brokers from FLOE_KAFKA_BROKERS when none are configured, the SASL
// secrets from their variables, the instance id from
// FLOE_KAFKA_INSTANCE_ID when none is configured, the group from the id,
// route formats.
// Zero durations and sizes take DefaultConfig's.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if len(c.Brokers) == 0 {
		if v := os.Getenv(EnvBrokers); v != "" {
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					c.Brokers = append(c.Brokers, b)
				}
			}
		}
	}
	if v := os.Getenv(EnvSASLUsername); v != "" {
		c.SASL.Username = v
	}
	if v := os.Getenv(EnvSASLPassword); v != "" {
		c.SASL.Password = Secret(v)
	}
	if c.ID == "" {
		c.ID = d.ID
	}
	if c.Group == "" {
		c.Group = "floe-" + c.ID
	}
	if c.ClientID == "" {
		c.ClientID = d.ClientID
	}
	if c.DeadLetterTable == "" {
		c.DeadLetterTable = d.DeadLetterTable
	}
	if c.StartOffset == "" {
		c.StartOffset = d.StartOffset
	}
	if c.BatchRecords == 0 {
		c.BatchRecords = d.BatchRecords
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = d.FetchMaxBytes
	}
	if c.FetchMaxPartitionBytes == 0 {
		c.FetchMaxPartitionBytes = d.FetchMaxPartitionBytes
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = d.FetchMaxWait
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = d.RebalanceTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.InstanceID == "" {
		c.InstanceID = strings.TrimSpace(os.Getenv(EnvInstanceID))
	}
	if c.PartitionAssignmentStrategy == "" {
		c.PartitionAssignmentStrategy = d.PartitionAssignmentStrategy
	}
	if c.UnavailableTimeout == 0 {
		c.UnavailableTimeout = d.UnavailableTimeout
	}
	for i := range c.Routes {
		if c.Routes[i].Format == "" {
			c.Routes[i].Format = FormatJSON
		}
		if c.Routes[i].Mode == "" {
			c.Routes[i].Mode = ModeAppend
		}
	}
}

// Validate checks every setting and names the first bad key, e.g.
// "kafka.brokers: none configured (set brokers or FLOE_KAFKA_BROKERS)".
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("kafka.%s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.ID == "":
		return bad("id", "must not be empty")
	case len(c.Brokers) == 0:
		return bad("brokers", "none configured (set brokers or %s)", EnvBrokers)
	case c.Group == "":
		return bad("group", "must not be empty")
	case len(c.Routes) == 0:
		return bad("routes", "none configured: map at least one topic to a table")
	case c.StartOffset != "earliest" && c.StartOffset != "latest":
		return bad("start-offset", "%q is not earliest or latest", c.StartOffset)
	case c.BatchRecords < 1 || c.BatchRecords > 1<<20:
		return bad("batch-records", "must be between 1 and %d", 1<<20)
	case c.FetchMaxBytes < 1<<10 || c.FetchMaxBytes > 1<<30:
		return bad("fetch-max-bytes", "must be between 1KiB and 1GiB")
	case c.FetchMaxPartitionBytes < 1<<10 || c.FetchMaxPartitionBytes > c.FetchMaxBytes:
		return bad("fetch-max-partition-bytes", "must be between 1KiB and fetch-max-bytes")
	case c.FetchMaxWait < 10*time.Millisecond:
		return bad("fetch-max-wait", "%s is below the minimum of 10ms", c.FetchMaxWait)
	case c.SessionTimeout < time.Second:
		return bad("session-timeout", "%s is below the minimum of 1s", c.SessionTimeout)
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout:
		return bad("heartbeat-interval", "must be positive and below session-timeout")
	case c.RebalanceTimeout < time.Second:
		return bad("rebalance-timeout", "%s is below the minimum of 1s", c.RebalanceTimeout)
	case !validInstanceID(c.InstanceID):
		return bad("instance-id", "%q is longer than 249 characters or has characters other than a-z A-Z 0-9 . _ -", c.InstanceID)
	case strategyBalancer(c.PartitionAssignmentStrategy) == nil:
		return bad("partition-assignment-strategy", "%q is not cooperative-sticky, sticky, range or roundrobin", c.PartitionAssignmentStrategy)
	case c.UnavailableTimeout < time.Second:
		return bad("unavailable-timeout", "%s is below the minimum of 1s", c.UnavailableTimeout)
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if err := validTable(c.DeadLetterTable); err != nil {
		return bad("dead-letter-table", "%v", err)
	}
	topics := map[string]int{}
	modes := map[string]int{} // table → the first route writing it
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if len(r.Topics) == 0 {
			return bad(key+".topics", "none configured")
		}
		for _, t := range r.Topics {
			if !validTopic(t) {
				return bad(key+".topics", "%q is not a Kafka topic name: 1 to 249 of a-z A-Z 0-9 . _ -, and not . or ..", t)
			}
			if j, dup := topics[t]; dup {
				return bad(key+".topics", "topic %q is also in routes[%d]", t, j)
			}
			topics[t] = i
		}
		switch r.Format {
		case FormatJSON, FormatCanal, FormatDebezium:
		default:
			return bad(key+".format", "%q is not json, canal-json or debezium-json", r.Format)
		}
		if r.Field == "" {
			if len(r.Tables) > 0 {
				return bad(key+".tables", "needs field: the record field whose value picks the table")
			}
			if r.Table == "" {
				return bad(key+".table", "required (or field and tables)")
			}
		} else if len(r.Tables) == 0 {
			return bad(key+".tables", "field %q needs tables: value → table", r.Field)
		}
		for _, t := range r.tables() {
			if err := validTable(t); err != nil {
				return bad(key+".table", "%v", err)
			}
			if t == c.DeadLetterTable {
				return bad(key+".table", "%q is also the dead-letter table", t)
			}
		}
		if err := validMode(c.Routes, i, modes); err != nil {
			return bad(key+"."+err.key, "%s", err.reason)
		}
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" || c.SASL.Password == "" {
			return bad("sasl", "mechanism %s needs username and password (or %s and %s)", c.SASL.Mechanism, EnvSASLUsername, EnvSASLPassword)
		}
	default:
		return bad("sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls", "cert-file and key-file go together")
	}
	return nil
}

// modeError is a rejected mode or key setting of a route.
type modeError struct{ key, reason string }

// validMode checks routes[i]'s mode and key; modes maps the tables of the
// routes before it to the first route writing them.
func validMode(routes []Route, i int, modes map[string]int) *modeError {
	r := routes[i]
	switch r.Mode {
	case ModeAppend, ModeUpsert:
	default:
		return &modeError{"mode", fmt.Sprintf("%q is not append or upsert", r.Mode)}
	}
	for _, t := range r.tables() {
		j, seen := modes[t]
		if !seen {
			modes[t] = i
			continue
		}
		if routes[j].Mode != r.Mode {
			return &modeError{"mode", fmt.Sprintf("%s: table %s is also written by routes[%d] in mode %s; a table is either appended to or upserted",
				r.Mode, t, j, routes[j].Mode)}
		}
	}
	if r.Mode != ModeUpsert {
		if len(r.Key) > 0 {
			return &modeError{"key", "only with mode: upsert"}
		}
		return nil
	}
	if r.Format == FormatJSON && len(r.Key) == 0 {
		return &modeError{"key", "required for mode upsert with format json: the columns that identify a row (the tables' identifier fields)"}
	}
	seen := map[string]bool{}
	for k, col := range r.Key {
		if col == "" {
			return &modeError{fmt.Sprintf("key[%d]", k), "must not be empty"}
		}
		if seen[col] {
			return &modeError{fmt.Sprintf("key[%d]", k), fmt.Sprintf("column %q is named twice", col)}
		}
		seen[col] = true
	}
	return nil
}

// validTopic reports whether t is a name Kafka accepts for a topic (its
// own rule: at most 249 characters of ASCII letters, digits, '.', '_' and
// '-', and not "." or ".."), so that a name the brokers would never
// have is refused when the config is read.
func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func validTable(name string) error {
	if _, err := table.ParseIdent(name); err != nil || !strings.Contains(name, ".") {
		return fmt.Errorf("%q is not namespace.table", name)
	}
	return nil
}

// tables lists the route's tables, sorted and without duplicates.
func (r Route) tables() []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	add(r.Table)
	for _, t := range sortedValues(r.Tables) {
		add(t)
	}
	return out
}

// UnmarshalYAML decodes over DefaultConfig and rejects unknown keys.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "kafka", plain(DefaultConfig()), (*plain)(c))
}

// UnmarshalYAML rejects unknown keys of a route.
func (r *Route) UnmarshalYAML(n *yaml.Node) error {
	type plain Route // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "kafka.routes", plain{}, (*plain)(r))
}

// UnmarshalYAML rejects unknown keys of the tls section.
func (t *TLSConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain TLSConfig // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "kafka.tls", plain{}, (*plain)(t))
}

// UnmarshalYAML rejects unknown keys of the sasl section.
func (s *SASLConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain SASLConfig // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "kafka.sasl", plain{}, (*plain)(s))
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
