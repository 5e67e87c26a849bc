package mysql

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
	"github.com/floe-lake/floe/table"
)

// Environment variables that override settings of every MySQL source.
const (
	// EnvDSN is the DSN used when the config names none
	// (integration/mariadb.sh prints it).
	EnvDSN = "FLOE_MYSQL_DSN"
	// EnvPassword overrides the password in the DSN.
	EnvPassword = "FLOE_MYSQL_PASSWORD"
)

// Flavors of server.
const (
	FlavorMySQL   = "mysql"
	FlavorMariaDB = "mariadb"
)

// Config configures one MySQL or MariaDB source: the mysql: section of a
// source in floe.yaml. Decoding YAML into a Config starts from
// DefaultConfig, so absent keys keep their defaults; unknown keys are an
// error.
type Config struct {
	// ID is the source id positions are stored under in the tables
	// (floe.positions.<id>). Default: mysql.
	ID string `yaml:"id"`
	// DSN is the server to read, in Go's MySQL driver form:
	// user:password@tcp(host:port)/ (the database part is ignored).
	// Default: env FLOE_MYSQL_DSN; required. Env FLOE_MYSQL_PASSWORD
	// overrides the password.
	DSN string `yaml:"dsn"`
	// Flavor is mysql or mariadb; "" detects it from the server's version.
	// Default: "".
	Flavor string `yaml:"flavor"`
	// ServerID is the replica server id this source registers with; it
	// must differ from every other replica of the server. Default: derived
	// from ID (1000000 + a hash).
	ServerID uint32 `yaml:"server-id"`
	// Include lists regular expressions matched against "database.table";
	// a table matching any is captured. Required.
	Include []string `yaml:"include"`
	// Exclude lists regular expressions of tables not to capture, even
	// when included. Default: none.
	Exclude []string `yaml:"exclude"`
	// TableName names the Iceberg table of a MySQL table: {db} and {table}
	// are replaced. Default: "{db}.{table}".
	TableName string `yaml:"table-name"`
	// Partitions partition the Iceberg tables the source creates: a
	// captured table takes the partition fields of the first entry whose
	// Tables matches its "database.table". They apply when the Iceberg
	// table is created; an existing table keeps its partitioning (a
	// declared table under tables: is created from its spec). Default:
	// none (unpartitioned).
	Partitions []TablePartition `yaml:"partitions"`
	// DeadLetterTable receives rows that cannot be mapped, with their
	// binlog position. Default: floe.dead_letters.
	DeadLetterTable string `yaml:"dead-letter-table"`
	// Snapshot copies the existing rows of a table that has no position
	// yet (consistently with a binlog position) before streaming. false
	// starts such tables empty at the current binlog position.
	// Default: true.
	Snapshot bool `yaml:"snapshot"`
	// SnapshotParallelism is how many connections read a snapshot's
	// tables at once, each in its own consistent-snapshot transaction
	// opened at the same binlog position; a table is split into chunks of
	// its primary key, which they read in parallel. 1 reads each table in
	// one SELECT on one connection. Tables whose key cannot be chunked
	// (a FLOAT, DOUBLE, ENUM, SET or BIT key column) are read whole.
	// Default: 4.
	SnapshotParallelism int `yaml:"snapshot-parallelism"`
	// BatchRows is how many changed rows (over all tables) are collected
	// before they are handed to the tables; batches end at transaction
	// boundaries only. Default: 8192.
	BatchRows int `yaml:"batch-rows"`
	// BatchDelay is the longest a complete transaction waits in a batch
	// that is not full. Default: 200ms.
	BatchDelay time.Duration `yaml:"batch-delay"`
	// PositionCommitInterval commits a table's position alone (an empty
	// snapshot) when the binlog moved on but the table had no changes for
	// this long, so that a quiet table does not hold the resume position
	// back (the server may purge old binlogs). 0 disables. Default: 10m.
	PositionCommitInterval time.Duration `yaml:"position-commit-interval"`
	// MaxDeleteFiles bounds the position-delete files of a table before
	// they are merged (writer.KeyedOptions.MaxDeleteFiles). Default: 8.
	MaxDeleteFiles int `yaml:"max-delete-files"`
	// HeartbeatPeriod asks the server for a heartbeat when idle, so a dead
	// connection is noticed. Default: 5s.
	HeartbeatPeriod time.Duration `yaml:"heartbeat-period"`
	// ConnectTimeout bounds connecting and each metadata query.
	// Default: 10s.
	ConnectTimeout time.Duration `yaml:"connect-timeout"`

	// snapshotChunkRows is how many rows a snapshot chunk has (0:
	// defaultSnapshotChunkRows); tests set it small.
	snapshotChunkRows int
	// snapshotChunkPause is a pause before each chunk's read: tests
	// stretch a snapshot with it so that writes land while it reads.
	snapshotChunkPause time.Duration
}

// TablePartition partitions the Iceberg tables of the captured tables
// that match Tables:
//
//	partitions:
//	  - tables: 'shop\.orders'
//	    partition:
//	      - {column: created_at, transform: day}
//	      - {column: id, transform: "bucket[8]"}
//
// The partition columns need not be part of the primary key: an update
// that changes them moves the row, deleting it in its old partition.
type TablePartition struct {
	// Tables is a regular expression matched against the whole
	// "database.table". Required.
	Tables string `yaml:"tables"`
	// Partition lists the partition fields, as a table spec's partition:
	// does (column, transform, name), of top-level columns. Required.
	Partition []table.PartitionField `yaml:"partition"`
}

// maxSnapshotParallelism bounds Config.SnapshotParallelism: each is a
// connection to the server.
const maxSnapshotParallelism = 64

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ID:                     "mysql",
		TableName:              "{db}.{table}",
		DeadLetterTable:        "floe.dead_letters",
		Snapshot:               true,
		SnapshotParallelism:    4,
		BatchRows:              8192,
		BatchDelay:             200 * time.Millisecond,
		PositionCommitInterval: 10 * time.Minute,
		MaxDeleteFiles:         8,
		HeartbeatPeriod:        5 * time.Second,
		ConnectTimeout:         10 * time.Second,
	}
}

// ApplyDefaults fills the settings that come from the environment: the DSN
// and its password, and the server id.
func (c *Config) ApplyDefaults() {
	if c.DSN == "" {
		c.DSN = os.Getenv(EnvDSN)
	}
	if c.ServerID == 0 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(c.ID))
		c.ServerID = 1000000 + h.Sum32()%1000000
	}
	d := DefaultConfig()
	if c.TableName == "" {
		c.TableName = d.TableName
	}
	if c.DeadLetterTable == "" {
		c.DeadLetterTable = d.DeadLetterTable
	}
	if c.BatchRows == 0 {
		c.BatchRows = d.BatchRows
	}
	if c.SnapshotParallelism == 0 {
		c.SnapshotParallelism = d.SnapshotParallelism
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = d.BatchDelay
	}
	if c.MaxDeleteFiles == 0 {
		c.MaxDeleteFiles = d.MaxDeleteFiles
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = d.HeartbeatPeriod
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
}

// Validate checks every setting and names the first bad key, e.g.
// "mysql.dsn: required (or set FLOE_MYSQL_DSN)".
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("mysql.%s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.ID == "":
		return bad("id", "must not be empty")
	case c.DSN == "":
		return bad("dsn", "required (or set %s)", EnvDSN)
	case c.Flavor != "" && c.Flavor != FlavorMySQL && c.Flavor != FlavorMariaDB:
		return bad("flavor", "%q: want mysql, mariadb or empty (detect)", c.Flavor)
	case len(c.Include) == 0:
		return bad("include", "list at least one regular expression of database.table")
	case !strings.Contains(c.TableName, "{table}"):
		return bad("table-name", "%q must contain {table}", c.TableName)
	case c.BatchRows < 1:
		return bad("batch-rows", "must be at least 1")
	case c.SnapshotParallelism < 1 || c.SnapshotParallelism > maxSnapshotParallelism:
		return bad("snapshot-parallelism", "%d: want 1 to %d connections", c.SnapshotParallelism, maxSnapshotParallelism)
	case c.BatchDelay < time.Millisecond:
		return bad("batch-delay", "must be at least 1ms")
	case c.PositionCommitInterval < 0:
		return bad("position-commit-interval", "must not be negative")
	case c.MaxDeleteFiles < 1:
		return bad("max-delete-files", "must be at least 1")
	case c.HeartbeatPeriod < time.Second:
		return bad("heartbeat-period", "must be at least 1s")
	case c.ConnectTimeout < time.Second:
		return bad("connect-timeout", "must be at least 1s")
	}
	if _, err := parseDSN(c.DSN); err != nil {
		return bad("dsn", "%v", err)
	}
	for i, p := range c.Include {
		if _, err := regexp.Compile(p); err != nil {
			return bad(fmt.Sprintf("include[%d]", i), "%v", err)
		}
	}
	for i, p := range c.Exclude {
		if _, err := regexp.Compile(p); err != nil {
			return bad(fmt.Sprintf("exclude[%d]", i), "%v", err)
		}
	}
	for i, p := range c.Partitions {
		key := fmt.Sprintf("partitions[%d]", i)
		if _, err := regexp.Compile(p.Tables); err != nil || p.Tables == "" {
			if err == nil {
				err = errors.New("required: a regular expression of database.table")
			}
			return bad(key+".tables", "%v", err)
		}
		if len(p.Partition) == 0 {
			return bad(key+".partition", "list at least one partition field")
		}
		for j, f := range p.Partition {
			if f.Column == "" || strings.Contains(f.Column, ".") {
				return bad(fmt.Sprintf("%s.partition[%d].column", key, j), "%q: name a top-level column", f.Column)
			}
		}
	}
	if i := strings.LastIndexByte(c.DeadLetterTable, '.'); i <= 0 || i == len(c.DeadLetterTable)-1 {
		return bad("dead-letter-table", "%q is not namespace.table", c.DeadLetterTable)
	}
	if n := c.icebergName("db", "t"); strings.LastIndexByte(n, '.') <= 0 {
		return bad("table-name", "%q does not give namespace.table", c.TableName)
	}
	return nil
}

// UnmarshalYAML decodes over DefaultConfig and rejects unknown keys.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "mysql", plain(DefaultConfig()), (*plain)(c))
}

// icebergName is the Iceberg table of db.tbl.
func (c *Config) icebergName(db, tbl string) string {
	return strings.NewReplacer("{db}", db, "{table}", tbl).Replace(c.TableName)
}

// dsn is a parsed DSN.
type dsn struct {
	Host     string
	Port     uint16
	User     string
	Password string
	cfg      *gomysql.Config
}

func parseDSN(s string) (*dsn, error) {
	cfg, err := gomysql.ParseDSN(s)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	if p := os.Getenv(EnvPassword); p != "" {
		cfg.Passwd = p
	}
	if cfg.Net != "tcp" {
		return nil, fmt.Errorf("DSN network %q: binlog replication needs tcp(host:port)", cfg.Net)
	}
	host, port := cfg.Addr, "3306"
	if i := strings.LastIndexByte(cfg.Addr, ':'); i >= 0 {
		host, port = cfg.Addr[:i], cfg.Addr[i+1:]
	}
	var p uint16
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p == 0 {
		return nil, fmt.Errorf("DSN address %q: bad port", cfg.Addr)
	}
	if cfg.User == "" {
		return nil, errors.New("DSN has no user")
	}
	return &dsn{Host: strings.Trim(host, "[]"), Port: p, User: cfg.User, Password: cfg.Passwd, cfg: cfg}, nil
}
