// Command cdcgen produces a shop database's row changes (internal/cdcgen:
// inserts, updates, deletes and re-inserts over a fixed key space of
// orders, users and regions, and append-only ad events), deterministic by
// seed, to Kafka topics in Canal or Debezium JSON, and prints the final
// state of the keyed tables: the rows a mirror of the topics must hold.
// It is independent of floe: tests, `make soak-upsert` and
// examples/warehouse use it to feed `floe ingest`.
//
//	go run ./integration/cdcgen -format canal-json -changes 1000000 -keys 10000 -topic 'shop.{table}'
//	go run ./integration/cdcgen -dry-run -replay - -changes 1000 -tables orders
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/internal/cdcgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cdcgen:", err)
		os.Exit(1)
	}
}

type options struct {
	cfg          cdcgen.Config
	brokers      string
	format       string
	topic        string
	tables       string
	replay       string
	dryRun       bool
	createTopics bool
	rate         int
	loadPause    time.Duration
}

func parseFlags() (options, error) {
	o := options{cfg: cdcgen.DefaultConfig()}
	fs := flag.NewFlagSet("cdcgen", flag.ContinueOnError)
	fs.Uint64Var(&o.cfg.Seed, "seed", o.cfg.Seed, "seed of the stream")
	fs.IntVar(&o.cfg.Changes, "changes", o.cfg.Changes, "row changes to produce, over all tables")
	fs.IntVar(&o.cfg.Keys, "keys", o.cfg.Keys, "key space of orders and users")
	fs.IntVar(&o.cfg.Partitions, "partitions", o.cfg.Partitions, "partitions of each topic; a row's partition is its key modulo this")
	fs.StringVar(&o.tables, "tables", strings.Join(o.cfg.Tables, ","), "tables to change: orders, users, regions, ad_events")
	start := fs.String("start", o.cfg.Start.Format(time.RFC3339), "database time of the first change (RFC 3339)")
	fs.DurationVar(&o.cfg.Step, "step", o.cfg.Step, "database time between two events")
	fs.Float64Var(&o.cfg.MultiRow, "multi-row", o.cfg.MultiRow, "share of events that change several rows")
	fs.Float64Var(&o.cfg.KeyChange, "key-change", o.cfg.KeyChange, "share of orders updates that change the primary key")
	fs.Float64Var(&o.cfg.DeleteShare, "delete-share", o.cfg.DeleteShare, "share of changes to a present key that delete it")
	fs.BoolVar(&o.cfg.LoadUsers, "load-users", o.cfg.LoadUsers, "insert every user first, after the regions (the dimensions' initial load)")
	fs.DurationVar(&o.loadPause, "load-pause", 0, "after producing the initial load, wait this long before the changes (the load lands before the facts that join it)")
	fs.IntVar(&o.cfg.DDLEvery, "ddl-every", o.cfg.DDLEvery, "a harmless DDL statement every N events (Canal only; 0: none)")
	fs.StringVar(&o.brokers, "brokers", os.Getenv("FLOE_KAFKA_BROKERS"), "Kafka brokers, comma-separated (env FLOE_KAFKA_BROKERS)")
	fs.StringVar(&o.format, "format", cdcgen.FormatCanal, "canal-json or debezium-json")
	fs.StringVar(&o.topic, "topic", "shop.{table}", "topic; {table} is replaced by the table's name (without it, every table goes to one topic)")
	fs.StringVar(&o.replay, "replay", "", "write the rows the tables must hold (the final state of the keyed tables, every row of ad_events) to this file as JSON lines ({\"table\":…,\"row\":{…}}, sorted by key; - for stdout)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "produce nothing (with -replay: only compute the final state)")
	fs.BoolVar(&o.createTopics, "create-topics", true, "create missing topics with -partitions partitions")
	fs.IntVar(&o.rate, "rate", 0, "row changes per second (0: as fast as the broker takes them)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return o, err
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return o, fmt.Errorf("-start: %w", err)
	}
	o.cfg.Start = t
	o.cfg.Tables = strings.Split(o.tables, ",")
	if o.format != cdcgen.FormatCanal && o.format != cdcgen.FormatDebezium {
		return o, fmt.Errorf("-format %q: want %s or %s", o.format, cdcgen.FormatCanal, cdcgen.FormatDebezium)
	}
	if !o.dryRun && o.brokers == "" {
		return o, errors.New("no brokers: set -brokers or FLOE_KAFKA_BROKERS (integration/kafka.sh start)")
	}
	return o, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	g, err := cdcgen.New(o.cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	topicOf := func(t *cdcgen.Table) string { return strings.ReplaceAll(o.topic, "{table}", t.Name) }

	var cl *kgo.Client
	if !o.dryRun {
		cl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(o.brokers, ",")...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
			kgo.MaxBufferedRecords(100000), kgo.ProducerBatchMaxBytes(4<<20))
		if err != nil {
			return fmt.Errorf("connect to kafka: %w", err)
		}
		defer cl.Close()
		if o.createTopics {
			var topics []string
			for _, t := range g.GeneratedTables() {
				if tp := topicOf(t); len(topics) == 0 || topics[len(topics)-1] != tp {
					topics = append(topics, tp)
				}
			}
			if err := createTopics(ctx, cl, topics, int32(o.cfg.Partitions)); err != nil {
				return err
			}
		}
	}

	var (
		mu       sync.Mutex
		firstErr error
	)
	perTopic := map[string]int{}
	records, started := 0, time.Now()
	loading := true
	for {
		ev, ok := g.Next()
		if !ok {
			break
		}
		if loading && !ev.Load {
			loading = false
			if cl != nil && o.loadPause > 0 {
				if err := cl.Flush(ctx); err != nil {
					return fmt.Errorf("flush the initial load: %w", err)
				}
				fmt.Fprintf(os.Stderr, "cdcgen: initial load produced (%d changes); the changes follow in %s\n", g.Changes(), o.loadPause)
				select {
				case <-time.After(o.loadPause):
				case <-ctx.Done():
					return ctx.Err()
				}
				if o.rate > 0 {
					// Pace the changes from now on.
					started = time.Now().Add(-time.Duration(float64(g.Changes()) / float64(o.rate) * float64(time.Second)))
				}
			}
		}
		recs, err := cdcgen.Encode(o.format, ev)
		if err != nil {
			return err
		}
		if cl != nil {
			for _, r := range recs {
				topic := topicOf(ev.Table)
				perTopic[topic]++
				cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				})
			}
		}
		records += len(recs)
		if o.rate > 0 {
			if ahead := time.Duration(float64(g.Changes())/float64(o.rate)*float64(time.Second)) - time.Since(started); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if cl != nil {
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		mu.Lock()
		err := firstErr
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "cdcgen: %d changes, %d %s records in %s (seed %d, %d keys)", g.Changes(), records, o.format,
		time.Since(started).Round(time.Millisecond), o.cfg.Seed, o.cfg.Keys)
	for t, n := range perTopic {
		fmt.Fprintf(os.Stderr, "; %s: %d", t, n)
	}
	fmt.Fprint(os.Stderr, "; row changes:")
	for _, t := range g.GeneratedTables() {
		fmt.Fprintf(os.Stderr, " %s=%d", t.Name, g.TableChanges(t.Name))
	}
	fmt.Fprintln(os.Stderr)
	if o.replay != "" {
		return writeReplay(g, o.replay)
	}
	return nil
}

// writeReplay writes the rows every table must hold as JSON lines.
func writeReplay(g *cdcgen.Generator, path string) error {
	out := os.Stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("create replay: %w", err)
		}
		defer func() { _ = f.Close() }()
		out = f
	}
	w := bufio.NewWriter(out)
	for _, t := range g.GeneratedTables() {
		for _, r := range g.Replay(t.Name) {
			fmt.Fprintf(w, "{\"table\":%q,\"row\":%s}\n", t.Name, cdcgen.JSON(t, r))
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write replay: %w", err)
	}
	if path != "-" {
		return out.Close()
	}
	return nil
}

// createTopics creates the topics that do not exist yet.
func createTopics(ctx context.Context, cl *kgo.Client, topics []string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Topic, err)
		}
	}
	return nil
}
