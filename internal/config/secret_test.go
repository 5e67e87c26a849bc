package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-lake/floe/source/all"
)

// TestConfigErrorsHideValues: a value of the wrong type in a source
// section (a password where the sasl mapping belongs) is reported at its
// line without the value, which yaml.v3 quotes in its own message.
func TestConfigErrorsHideValues(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"sasl is a password", "sources:\n  - type: kafka\n    kafka:\n      brokers: [\"h:9092\"]\n      routes: [{topics: [t], table: a.b}]\n      sasl: Hunter2-Secret-Value\n",
			"floe.yaml:6: sources[0].kafka.sasl: want a mapping"},
		{"a password list", "sources:\n  - type: kafka\n    kafka:\n      brokers: [\"h:9092\"]\n      routes: [{topics: [t], table: a.b}]\n      sasl: {mechanism: PLAIN, username: u, password: [Hunter2-Secret-Value]}\n",
			"floe.yaml:6: sources[0].kafka.sasl.password: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "floe.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, Sources, all.Registry())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "Hunter2") {
				t.Errorf("the error shows the secret: %s", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q; want it to contain %q", msg, tt.want)
			}
		})
	}
}
