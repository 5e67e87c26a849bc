package mysql

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	t.Setenv(EnvDSN, "")
	ok := func() Config {
		c := DefaultConfig()
		c.DSN = "root@tcp(127.0.0.1:13306)/"
		c.Include = []string{`shop\..*`}
		c.ApplyDefaults()
		return c
	}
	c := ok()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if c.ServerID < 1000000 || c.ServerID >= 2000000 {
		t.Errorf("server id %d not derived", c.ServerID)
	}
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.DSN = "" }, "mysql.dsn: required"},
		{func(c *Config) { c.DSN = "root@unix(/tmp/s)/" }, "mysql.dsn: "},
		{func(c *Config) { c.Include = nil }, "mysql.include:"},
		{func(c *Config) { c.Include = []string{"("} }, "mysql.include[0]:"},
		{func(c *Config) { c.Exclude = []string{"["} }, "mysql.exclude[0]:"},
		{func(c *Config) { c.Flavor = "postgres" }, "mysql.flavor:"},
		{func(c *Config) { c.TableName = "{db}" }, "mysql.table-name:"},
		{func(c *Config) { c.TableName = "{table}" }, "mysql.table-name:"},
		{func(c *Config) { c.DeadLetterTable = "nodot" }, "mysql.dead-letter-table:"},
		{func(c *Config) { c.BatchRows = -1 }, "mysql.batch-rows:"},
		{func(c *Config) { c.SnapshotParallelism = -1 }, "mysql.snapshot-parallelism:"},
		{func(c *Config) { c.SnapshotParallelism = 65 }, "mysql.snapshot-parallelism:"},
		{func(c *Config) { c.MaxDeleteFiles = -1 }, "mysql.max-delete-files:"},
		{func(c *Config) { c.PositionCommitInterval = -1 }, "mysql.position-commit-interval:"},
	}
	for _, tc := range cases {
		c := ok()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("want an error starting %q, got %v", tc.want, err)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("dsn: u@tcp(h:1)/\ninclude: [a\\..*]\nbatch-rows: 10\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.BatchRows != 10 || !c.Snapshot || c.TableName != "{db}.{table}" || c.ID != "mysql" {
		t.Errorf("decoded %+v: defaults not kept", c)
	}
	if err := yaml.Unmarshal([]byte("dsn: x\nsnapshots: true\n"), &c); err == nil || !strings.Contains(err.Error(), `unknown key "snapshots"`) {
		t.Errorf("unknown key: %v", err)
	}
	t.Setenv(EnvDSN, "env@tcp(127.0.0.1:3306)/")
	c = DefaultConfig()
	c.ApplyDefaults()
	if c.DSN != "env@tcp(127.0.0.1:3306)/" {
		t.Errorf("DSN from %s: %q", EnvDSN, c.DSN)
	}
}

func TestPositions(t *testing.T) {
	p := binlogPos{seq: 42, offset: 1234}
	if got := decodePos(p.encode()); got != p {
		t.Errorf("round trip %v → %v", p, got)
	}
	if (binlogPos{seq: 1, offset: 4000000000}).encode() >= (binlogPos{seq: 2, offset: 4}).encode() {
		t.Error("positions do not order across files")
	}
	if n := fileName("mariadb-bin.000007", 12); n != "mariadb-bin.000012" {
		t.Errorf("fileName: %s", n)
	}
	if s, err := fileSeq("mysql-bin.1000123"); err != nil || s != 1000123 {
		t.Errorf("fileSeq: %d %v", s, err)
	}
}

func TestConvert(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"1970-01-01 00:00:00", 0, false},
		{"1969-12-31 23:59:59.5", -500000, false},
		{"2024-02-29 23:59:59.999999", 1709251199999999, false},
		{"0000-00-00 00:00:00", 0, true},
		{"2024-13-01 00:00:00", 0, true},
	} {
		got, err := parseDatetime(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("parseDatetime(%q) = %d, %v", c.in, got, err)
		}
	}
	if us, err := parseTime("23:59:59.000001"); err != nil || us != 86399000001 {
		t.Errorf("parseTime: %d %v", us, err)
	}
	for _, bad := range []string{"-00:00:01", "24:00:00", "838:59:59"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
	tg := &target{prec: 12, scale: 2}
	for in, want := range map[string]string{"-12.3": "-12.30", "0.01": "0.01", "9999999999.99": "9999999999.99", "+5": "5.00"} {
		n, err := parseDecimal(in, tg)
		if err != nil || n.ToString(2) != want {
			t.Errorf("parseDecimal(%q) = %s, %v", in, n.ToString(2), err)
		}
	}
	for _, bad := range []string{"1.234", "99999999999.00", "1e5", ""} {
		if _, err := parseDecimal(bad, tg); err == nil {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
	wide := &target{prec: 38, scale: 10}
	if n, err := parseDecimal("1234567890123456789012345678.0123456789", wide); err != nil || n.ToString(10) != "1234567890123456789012345678.0123456789" {
		t.Errorf("wide decimal: %s %v", n.ToString(10), err)
	}
	for typ, want := range map[string]string{"bigint(20) unsigned": "decimal(20,0)", "int(10) unsigned": "long", "tinyint(1)": "int",
		"decimal(65,30)": "string", "enum('a','b')": "string", "bit(3)": "binary", "timestamp(6)": "timestamptz", "datetime": "timestamp"} {
		dt := typ
		if i := strings.IndexAny(dt, "( "); i >= 0 {
			dt = dt[:i]
		}
		if _, got, err := mapType(dt, typ); err != nil || got != want {
			t.Errorf("mapType(%s) = %s, %v; want %s", typ, got, err, want)
		}
	}
}
