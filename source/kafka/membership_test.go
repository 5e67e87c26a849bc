package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"
)

// TestMembershipConfig: instance-id, partition-assignment-strategy and
// unavailable-timeout decode, default, come from the environment, reach
// the group client, and bad values name their key.
func TestMembershipConfig(t *testing.T) {
	t.Setenv(EnvBrokers, "")
	t.Setenv(EnvInstanceID, "")
	parse := func(t *testing.T, src string) Config {
		t.Helper()
		var c Config
		if err := yaml.Unmarshal([]byte("brokers: [127.0.0.1:9092]\nroutes: [{topics: [a], table: ods.a}]\n"+src), &c); err != nil {
			t.Fatal(err)
		}
		c.ApplyDefaults()
		return c
	}
	t.Run("defaults", func(t *testing.T) {
		c := parse(t, "")
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.InstanceID != "" || c.PartitionAssignmentStrategy != StrategyCooperativeSticky || c.UnavailableTimeout != 30*time.Second {
			t.Fatalf("defaults: instance-id %q, strategy %q, unavailable-timeout %s", c.InstanceID, c.PartitionAssignmentStrategy, c.UnavailableTimeout)
		}
		if c.SessionTimeout != 10*time.Second || c.HeartbeatInterval != 3*time.Second {
			t.Fatalf("session %s heartbeat %s, want 10s and 3s", c.SessionTimeout, c.HeartbeatInterval)
		}
	})
	t.Run("set", func(t *testing.T) {
		c := parse(t, "instance-id: ingest-0\npartition-assignment-strategy: range\nunavailable-timeout: 5s\nsession-timeout: 12s\n")
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.InstanceID != "ingest-0" || c.PartitionAssignmentStrategy != StrategyRange || c.UnavailableTimeout != 5*time.Second {
			t.Fatalf("got %q %q %s", c.InstanceID, c.PartitionAssignmentStrategy, c.UnavailableTimeout)
		}
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, groupOpts(&c)...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if v := cl.OptValue(kgo.InstanceID); v != "ingest-0" {
			t.Fatalf("client instance id %v", v)
		}
		if v := cl.OptValue(kgo.SessionTimeout); v != 12*time.Second {
			t.Fatalf("client session timeout %v", v)
		}
		bs, _ := cl.OptValue(kgo.Balancers).([]kgo.GroupBalancer)
		if len(bs) != 1 || bs[0].ProtocolName() != "range" {
			t.Fatalf("client balancers %v", bs)
		}
	})
	t.Run("instance id from the environment", func(t *testing.T) {
		t.Setenv(EnvInstanceID, "pod-3")
		if c := parse(t, ""); c.InstanceID != "pod-3" {
			t.Fatalf("instance-id %q, want pod-3 from %s", c.InstanceID, EnvInstanceID)
		}
		if c := parse(t, "instance-id: cfg\n"); c.InstanceID != "cfg" {
			t.Fatalf("instance-id %q: the config's wins", c.InstanceID)
		}
	})
	t.Run("dynamic membership sets no instance id", func(t *testing.T) {
		c := parse(t, "")
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, groupOpts(&c)...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if v := cl.OptValue(kgo.InstanceID); v != nil && v != "" {
			if p, ok := v.(*string); !ok || p != nil {
				t.Fatalf("client instance id %v without instance-id", v)
			}
		}
	})
	bad := []struct{ src, want string }{
		{"instance-id: has space\n", "kafka.instance-id"},
		{"instance-id: " + strings.Repeat("x", 250) + "\n", "kafka.instance-id"},
		{"partition-assignment-strategy: sticky-cooperative\n", "kafka.partition-assignment-strategy"},
		{"unavailable-timeout: 100ms\n", "kafka.unavailable-timeout"},
	}
	for _, b := range bad {
		c := parse(t, b.src)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), b.want+":") {
			t.Errorf("%q: %v, want an error on %s", b.src, err, b.want)
		}
	}
}
