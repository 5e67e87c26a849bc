package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrBrokersUnreachable is wrapped by Health while no broker has answered
// for unavailable-timeout.
var ErrBrokersUnreachable = errors.New("no kafka broker answers")

// ErrTopicMissing is wrapped by Health while a routed topic has not
// existed (or not been readable) for unavailable-timeout.
var ErrTopicMissing = errors.New("kafka topic missing")

// health watches what the group client only retries in silence: brokers
// that do not answer (it logs each failed dial at WARN, forever) and routed
// topics that do not exist (it refreshes metadata at DEBUG, forever, and
// never joins the group). It asks a broker for the topics' metadata every
// few seconds through the group client; a fault that lasts
// unavailable-timeout is logged at ERROR with its cause and shown by
// floe_kafka_broker_up and floe_kafka_topic_missing, and its end at INFO.
// It never stops the source: the client keeps retrying, and a topic
// created later is consumed.
type health struct {
	s       *Source
	timeout time.Duration
	every   time.Duration // between probes
	wait    time.Duration // for one probe's answer

	mu sync.Mutex
	// since is when a broker last answered (or the watch started); lastErr
	// is why the last probe got no answer.
	since   time.Time
	lastErr error
	down    bool // reported unreachable
	// topics is the state of routed topics that did not exist at the last
	// answer.
	topics map[string]*topicFault
}

type topicFault struct {
	since    time.Time
	err      error
	reported bool
}

func newHealth(s *Source) *health {
	to := s.cfg.UnavailableTimeout
	every := min(max(to/6, 200*time.Millisecond), 5*time.Second)
	for _, t := range s.topics {
		s.m.missing.WithLabelValues(t).Set(0)
	}
	return &health{s: s, timeout: to, every: every, wait: max(every, time.Second), since: s.now(), topics: map[string]*topicFault{}}
}

// loop probes until done is closed.
func (h *health) loop(cl *kgo.Client, done <-chan struct{}) {
	defer h.s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, h.wait)
		resp, err := h.probe(pctx, cl)
		pcancel()
		if ctx.Err() != nil {
			return
		}
		if h.observe(resp, err) {
			cl.ForceMetadataRefresh() // a topic appeared: consume it now
		}
		t.Reset(h.every)
	}
}

// probe asks the brokers the client knows, then the seeds, one at a time
// and without retries, for the routed topics' metadata (never creating
// them), and returns the first answer or the first broker's error.
func (h *health) probe(ctx context.Context, cl *kgo.Client) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, t := range h.s.topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	var first error
	for _, b := range append(cl.DiscoveredBrokers(), cl.SeedBrokers()...) {
		resp, err := b.Request(ctx, req)
		if err == nil {
			return resp.(*kmsg.MetadataResponse), nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = errors.New("no brokers")
	}
	return nil, first
}

// observe takes one probe's outcome: an answer (err nil) or no answer. It
// logs and sets the gauges when a fault has lasted the timeout or ended,
// and reports whether a missing topic now exists.
func (h *health) observe(resp *kmsg.MetadataResponse, err error) (appeared bool) {
	s := h.s
	now := s.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.lastErr = err
		if !h.down && now.Sub(h.since) >= h.timeout {
			h.down = true
			s.m.brokerUp.Set(0)
			s.log.Error("no kafka broker answers; retrying", "brokers", s.cfg.Brokers, "for", now.Sub(h.since).Round(time.Millisecond), "err", err)
		}
		return false
	}
	if h.down {
		h.down = false
		s.m.brokerUp.Set(1)
		s.log.Info("kafka brokers answer again", "brokers", s.cfg.Brokers, "after", now.Sub(h.since).Round(time.Millisecond))
	}
	s.recovered()
	h.since, h.lastErr = now, nil
	for _, rt := range resp.Topics {
		if rt.Topic == nil || !slices.Contains(s.topics, *rt.Topic) {
			continue
		}
		topic := *rt.Topic
		f := h.topics[topic]
		if rt.ErrorCode == 0 {
			if f != nil {
				delete(h.topics, topic)
				appeared = true
				if f.reported {
					s.m.missing.WithLabelValues(topic).Set(0)
					s.log.Info("kafka topic exists again; consuming it", "topic", topic, "after", now.Sub(f.since).Round(time.Millisecond))
				}
			} else {
				s.m.missing.WithLabelValues(topic).Set(0)
			}
			continue
		}
		if f == nil {
			f = &topicFault{since: now}
			h.topics[topic] = f
		}
		f.err = kerr.ErrorForCode(rt.ErrorCode)
		if !f.reported && now.Sub(f.since) >= h.timeout {
			f.reported = true
			s.m.missing.WithLabelValues(topic).Set(1)
			msg := "kafka topic is not readable; retrying"
			if errors.Is(f.err, kerr.UnknownTopicOrPartition) {
				msg = "kafka topic does not exist; retrying until it is created"
			}
			s.log.Error(msg, "topic", topic, "brokers", s.cfg.Brokers, "for", now.Sub(f.since).Round(time.Millisecond), "err", f.err)
		}
	}
	return appeared
}

// err is the faults reported now, or nil.
func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	if h.down {
		errs = append(errs, fmt.Errorf("%w: brokers %v since %s: %w", ErrBrokersUnreachable, h.s.cfg.Brokers, h.since.UTC().Format(time.RFC3339), h.lastErr))
	}
	for _, t := range h.s.topics {
		if f := h.topics[t]; f != nil && f.reported {
			errs = append(errs, fmt.Errorf("%w: %s since %s: %w", ErrTopicMissing, t, f.since.UTC().Format(time.RFC3339), f.err))
		}
	}
	return errors.Join(errs...)
}
