package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigYAMLAndValidate(t *testing.T) {
	t.Setenv(EnvBrokers, "")
	t.Setenv(EnvSASLUsername, "")
	t.Setenv(EnvSASLPassword, "")
	src := `
id: clicks
brokers: [127.0.0.1:9092]
routes:
  - topics: [clicks]
    table: ods.clicks
  - topics: [binlog]
    table: ods.orders
    format: canal-json
metadata-columns: true
fetch-max-bytes: 8MiB
sasl: {mechanism: SCRAM-SHA-512, username: floe, password: hunter2}
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Group != "floe-clicks" || c.FetchMaxBytes != 8<<20 || c.BatchRecords != 10000 || c.Routes[0].Format != FormatJSON {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c.SASL.Password, c.SASL, c); strings.Contains(s, "hunter2") {
		t.Fatalf("the password prints: %s", s)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "sasl", c.SASL, "password", c.SASL.Password)
	if strings.Contains(b.String(), "hunter2") {
		t.Fatalf("the password is logged: %s", b.String())
	}

	if err := yaml.Unmarshal([]byte("brokerz: [x:1]"), &c); err == nil || !strings.Contains(err.Error(), `unknown key "brokerz"`) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := yaml.Unmarshal([]byte("routes: [{topics: [a], tabel: x.y}]"), &c); err == nil || !strings.Contains(err.Error(), `unknown key "tabel"`) {
		t.Fatalf("unknown route key: %v", err)
	}

	bad := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Brokers = nil }, "kafka.brokers: none configured"},
		{func(c *Config) { c.Brokers = []string{"localhost"} }, "kafka.brokers[0]"},
		{func(c *Config) { c.Routes = nil }, "kafka.routes: none"},
		{func(c *Config) { c.Routes[1].Topics = []string{"clicks"} }, `kafka.routes[1].topics: topic "clicks" is also in routes[0]`},
		{func(c *Config) { c.Routes[0].Format = "avro" }, "kafka.routes[0].format"},
		{func(c *Config) { c.Routes[0].Table = "" }, "kafka.routes[0].table: required"},
		{func(c *Config) { c.Routes[0].Table = "nodot" }, "kafka.routes[0].table"},
		{func(c *Config) { c.Routes[0].Field = "kind" }, "kafka.routes[0].tables"},
		{func(c *Config) { c.Routes[0].Table = c.DeadLetterTable }, "is also the dead-letter table"},
		{func(c *Config) { c.StartOffset = "middle" }, "kafka.start-offset"},
		{func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, "kafka.sasl.mechanism"},
		{func(c *Config) { c.SASL.Password = "" }, "kafka.sasl: mechanism SCRAM-SHA-512 needs username and password"},
		{func(c *Config) { c.TLS.CertFile = "a.pem" }, "kafka.tls: cert-file and key-file go together"},
		{func(c *Config) { c.HeartbeatInterval = c.SessionTimeout }, "kafka.heartbeat-interval"},
		{func(c *Config) { c.FetchMaxPartitionBytes = c.FetchMaxBytes + 1 }, "kafka.fetch-max-partition-bytes"},
	}
	for _, tc := range bad {
		cc := c
		cc.Routes = append([]Route(nil), c.Routes...)
		cc.Brokers = append([]string(nil), c.Brokers...)
		tc.mod(&cc)
		if err := cc.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
}

func TestConfigEnv(t *testing.T) {
	t.Setenv(EnvBrokers, "a:1, b:2")
	t.Setenv(EnvSASLUsername, "u")
	t.Setenv(EnvSASLPassword, "p")
	c := DefaultConfig()
	c.SASL.Mechanism = "PLAIN"
	c.Routes = []Route{{Topics: []string{"t"}, Table: "a.b"}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Brokers, ",") != "a:1,b:2" || c.SASL.Username != "u" || c.SASL.Password != "p" {
		t.Fatalf("env not applied: %v %v", c.Brokers, c.SASL.Username)
	}
}

func TestUnwrap(t *testing.T) {
	cases := []struct {
		format, value string
		want          string // rows as op:json, or error text
	}{
		{FormatJSON, `{"a":1}`, `:{"a":1}`},
		{FormatJSON, ``, `error: empty value`},
		{FormatCanal, `{"data":[{"id":"1"},{"id":"2"}],"type":"INSERT","es":1000,"isDdl":false}`, `insert:{"id":"1"} insert:{"id":"2"}`},
		{FormatCanal, `{"data":[{"id":"1","v":"b"}],"old":[{"v":"a"}],"type":"UPDATE","es":1000}`, `update:{"id":"1","v":"b"}`},
		{FormatCanal, `{"data":[{"id":"1"}],"type":"DELETE"}`, `delete:{"id":"1"}`},
		{FormatCanal, `{"data":null,"type":"CREATE","isDdl":true,"sql":"create table t (id int)"}`, `skip`},
		{FormatCanal, `{"data":[],"type":"INSERT"}`, `skip`},
		{FormatCanal, `{"type":`, `error: decode canal-json message`},
		{FormatCanal, `{"data":[{"id":"1"}]}`, `error: decode canal-json message: no type`},
		{FormatDebezium, `{"before":null,"after":{"id":1},"op":"c","ts_ms":5,"source":{"ts_ms":4}}`, `insert:{"id":1}`},
		{FormatDebezium, `{"before":{"id":1},"after":{"id":1,"v":2},"op":"u"}`, `update:{"id":1,"v":2}`},
		{FormatDebezium, `{"before":{"id":1},"after":null,"op":"d"}`, `delete:{"id":1}`},
		{FormatDebezium, `{"after":{"id":1},"op":"r"}`, `read:{"id":1}`},
		{FormatDebezium, `{"schema":{"type":"struct"},"payload":{"before":null,"after":{"id":9},"op":"c"}}`, `insert:{"id":9}`},
		{FormatDebezium, ``, `skip`},
		{FormatDebezium, `{"op":"t"}`, `skip`},
		{FormatDebezium, `{"before":null,"after":null,"op":"c"}`, `error: decode debezium-json event: op "c" without its row image`},
		{FormatDebezium, `{"id":1}`, `error: decode debezium-json event: no op`},
	}
	for _, tc := range cases {
		rows, err := unwrap(tc.format, []byte(tc.value), nil)
		var got string
		switch {
		case errors.Is(err, errSkip):
			got = "skip"
		case err != nil:
			got = "error: " + err.Error()
		default:
			var parts []string
			for _, r := range rows {
				parts = append(parts, r.op+":"+string(r.row))
			}
			got = strings.Join(parts, " ")
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("unwrap(%s, %s) = %q, want %q", tc.format, tc.value, got, tc.want)
		}
	}
	rows, _ := unwrap(FormatDebezium, []byte(`{"after":{"id":1},"op":"c","ts_ms":5,"source":{"ts_ms":4}}`), nil)
	if rows[0].eventTime.UnixMilli() != 4 {
		t.Errorf("debezium event time = %v, want source.ts_ms", rows[0].eventTime)
	}
}
