package kafka

import (
	"errors"
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
)

// TestErrRebalancedIsRoutine: a rebalance ends a run as a routine restart
// (Supervise logs it at INFO), keeping its message and identity.
func TestErrRebalancedIsRoutine(t *testing.T) {
	err := fmt.Errorf("revoked [t/0]: %w", ErrRebalanced)
	if !errors.Is(err, source.ErrRestart) || !errors.Is(err, ErrRebalanced) {
		t.Fatalf("%v: is ErrRestart %v, is ErrRebalanced %v", err, errors.Is(err, source.ErrRestart), errors.Is(err, ErrRebalanced))
	}
	if ErrRebalanced.Error() != "partitions were revoked or lost in a group rebalance" {
		t.Fatalf("message %q", ErrRebalanced)
	}
	if errors.Is(ErrClosed, source.ErrRestart) {
		t.Fatal("ErrClosed is a routine restart")
	}
}

// TestKind: the kind resolves a kafka: section beside "type: kafka" and
// builds a Source, which needs its routed tables declared (Specs).
func TestKind(t *testing.T) {
	t.Setenv(EnvBrokers, "")
	r := source.NewRegistry(Kind())
	var c source.Config
	doc := "type: kafka\nkafka: {id: clicks, brokers: [127.0.0.1:9], routes: [{topics: [clicks], table: ods.clicks}]}\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(r, "sources[0]"); err != nil {
		t.Fatal(err)
	}
	if got := c.Settings().(*Config); got.Group != "floe-clicks" {
		t.Fatalf("defaults not applied: %+v", got)
	}
	src, err := c.New(source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() //nolint:errcheck // never joined
	if src.ID() != "clicks" {
		t.Fatalf("ID %q", src.ID())
	}
	if _, err := src.Specs(nil); err == nil {
		t.Fatal("Specs without the routed table declared succeeded")
	}
	specs, err := src.Specs([]table.Spec{{Name: "ods.clicks"}})
	if err != nil || len(specs) != 1 || specs[0].Name != "floe.dead_letters" {
		t.Fatalf("Specs = %v, %v", specs, err)
	}
}
