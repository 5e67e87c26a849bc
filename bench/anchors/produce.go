package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recordBytes is the size of every produced JSON value.
const recordBytes = 280

var pages = []string{"/", "/search?q=shoes", "/product/1234", "/cart", "/checkout", "/account/orders"}

// clickJSON is record seq of the clickstream, every field a column of
// tableSpec, padded in page_url's query string to recordBytes.
func clickJSON(seq int64) []byte {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
	head := fmt.Sprintf(`{"event_id":%d,"event_time":"%s","user_id":%d,"session_id":"s-%08x","event_type":"%s","page_url":"https://shop.example.com%s`,
		seq, ts.Format(time.RFC3339Nano), seq%100000, seq/50, []string{"page_view", "click", "add_cart"}[seq%3], pages[seq%int64(len(pages))])
	tail := fmt.Sprintf(`","device":{"os":"android","app_version":"5.%d"},"tags":["a","b"]}`, seq%10)
	pad := recordBytes - len(head) - len(tail)
	var b strings.Builder
	b.WriteString(head)
	if pad > 0 {
		sep := "&"
		if !strings.Contains(pages[seq%int64(len(pages))], "?") {
			sep = "?"
		}
		b.WriteString(sep)
		if pad > 1 {
			b.WriteString("utm=")
			for i := 4; i < pad-1; i++ {
				b.WriteByte(byte('a' + (seq+int64(i))%26))
			}
		}
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// produce sends n records round-robin over the topic's partitions. It
// returns the mean value size.
func produce(ctx context.Context, brokers []string, topic string, partitions, n int) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200000), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return 0, fmt.Errorf("open producer: %w", err)
	}
	defer cl.Close()
	var total int64
	const chunk = 50000
	for from := 0; from < n; from += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for s := int64(from); s < int64(min(from+chunk, n)); s++ {
			v := clickJSON(s)
			total += int64(len(v))
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(s % int64(partitions)),
				Key: []byte("u" + strconv.FormatInt(s%100000, 10)), Value: v})
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := cl.ProduceSync(pctx, recs...).FirstErr()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	return float64(total) / float64(n), nil
}

// createTopic creates a topic on the broker (an existing one is an error:
// every run of the benchmark names its own).
func createTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("open admin client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(cctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// topicRecords is the sum of the end offsets of the topic's partitions: the
// records a reused topic holds.
func topicRecords(ctx context.Context, brokers []string, topic string, partitions int) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("open admin client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = int32(p), -1 // the end offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(cctx, cl)
	if err != nil {
		return 0, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	var n int64
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets of %s/%d: %w", topic, p.Partition, err)
			}
			n += p.Offset
		}
	}
	return n, nil
}
