package kafka

import (
	"strings"
	"testing"
)

// TestHostileTopicNames: a topic name Kafka would never have is refused
// when the config is read, naming the route and the rule; legal names
// Kafka has pass.
func TestHostileTopicNames(t *testing.T) {
	for _, tt := range []struct {
		topic string
		ok    bool
	}{
		{"clicks", true},
		{"a.b_c-D9", true},
		{strings.Repeat("t", 249), true},
		{"__consumer_offsets", true},
		{strings.Repeat("t", 250), false},
		{"with space", false},
		{`quo"te`, false},
		{"it's", false},
		{"ünïcödé", false},
		{"表", false},
		{"a/b", false},
		{".", false},
		{"..", false},
		{"", false},
		{"tab\there", false},
		{"semi;DROP TABLE x", false},
	} {
		c := DefaultConfig()
		c.Brokers = []string{"127.0.0.1:9092"}
		c.Routes = []Route{{Topics: []string{tt.topic}, Table: "ods.t"}}
		c.ApplyDefaults()
		err := c.Validate()
		if tt.ok != (err == nil) {
			t.Errorf("topic %q: Validate() = %v; want ok=%v", tt.topic, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "kafka.routes[0].topics: ") {
			t.Errorf("topic %q: error %q does not name the key", tt.topic, err)
		}
	}
}
