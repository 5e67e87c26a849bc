package kafka

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/floe-lake/floe/internal/cdcgen"
)

// envelopeCorpus are Canal and Debezium messages: the generator's, of
// every table, and hand-written edge cases.
func envelopeCorpus(t *testing.T) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, format := range []string{FormatCanal, FormatDebezium} {
		cfg := cdcgen.DefaultConfig()
		cfg.Changes = 300
		g, err := cdcgen.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, ok := g.Next()
			if !ok {
				break
			}
			rs, err := cdcgen.Encode(format, ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Value != nil {
					out[format] = append(out[format], r.Value)
				}
			}
		}
	}
	for _, s := range []string{
		`{"data":[{"id":1}],"type":"INSERT","es":1,"ts":2,"isDdl":false,"pkNames":["id"]}`,
		` {"data":null,"old":[],"type":null,"isDdl":null,"es":null,"pkNames":null} `,
		`{"data":[{"id":1}],"Type":"INSERT"}`,
		`{"data":[{"id":1}],"type":"INS\u0045RT"}`,
		`{"data":[{"id":1}],"type":"INSERT","type":"DELETE","data":[{"id":2},{"id":3}]}`,
		`{"data":[{"id":1}],"type":"INSERT","es":1.5}`,
		`{"data":[{"id":1}],"type":"INSERT","es":"1"}`,
		`{"data":[{"id":1}],"type":"INSERT","es":99999999999999999999}`,
		`{"data":[{"id":1}],"type":"INSERT","pkNames":[null]}`,
		`{"data":[{"id":1}],"type":"INSERT","isDdl":"true"}`,
		`{"data":{"id":1},"type":"INSERT"}`,
		`{"data":[{"id":1}],"type":"INSERT","x":[1,{"a":"}"},-0.5e+3,true,null]}`,
		`{"type":"ALTER","isDdl":true,"sql":"ALTER TABLE t ADD c INT"}`,
		`{"type":"ALTER","isDdl":true,"sql":"ALTER TABLE \"t\""}`,
		`{"data":[{"id":1}],"type":"INSERT","ünknown":1}`,
		`[]`, `null`, `{}`, `{"data":[{"id":1}],"type":"INSERT"} x`, `{"data":[01]}`,
	} {
		out[FormatCanal] = append(out[FormatCanal], []byte(s))
	}
	for _, s := range []string{
		`{"before":null,"after":{"id":1},"op":"c","ts_ms":5,"source":{"ts_ms":4,"db":"d"}}`,
		`{"schema":{"type":"struct"},"payload":{"before":{"id":1},"after":null,"op":"d","ts_ms":5}}`,
		`{"payload":null}`,
		`{"before":{"id":1},"after":{"id":2},"op":"u","source":null}`,
		`{"before":{"id":1},"after":{"id":2},"op":"u","source":5}`,
		`{"before":{"id":1},"after":{"id":2},"op":"u","source":{"TS_MS":3}}`,
		`{"before":{"id":1},"after":{"id":2},"Op":"u"}`,
		`{"before":{"id":1},"after":{"id":2},"op":"u","ts_ms":1e3}`,
		`{"before":{"id":1},"after":{"id":2},"op":"\u0075"}`,
		`{"before":{"id":1},"after":{"id":"\ud800"},"op":"u"}`,
		`{"after":{"id":1},"op":"c","after":{"id":2}}`,
		`{"after":{"id":1},"op":"c",}`, `{"after":{"id":1} "op":"c"}`, `{"after":{"id":tru},"op":"c"}`,
		`{"after":{"id":"a` + "\x01" + `"},"op":"c"}`, `{"after":{"id":"\x"},"op":"c"}`, `{"after":[1,],"op":"c"}`,
	} {
		out[FormatDebezium] = append(out[FormatDebezium], []byte(s))
	}
	return out
}

// TestEnvelopeFastPath: whenever the fast decoders answer, encoding/json
// decodes the same value without error into the same struct; they answer
// for every generated message (else they would not help); random
// mutations of the corpus keep the first property.
func TestEnvelopeFastPath(t *testing.T) {
	corpus := envelopeCorpus(t)
	check := func(format string, v []byte) bool {
		t.Helper()
		switch format {
		case FormatCanal:
			got, ok := fastCanal(v)
			if !ok {
				return false
			}
			var want canalMessage
			if err := json.Unmarshal(v, &want); err != nil {
				t.Errorf("fast canal decoded %q, encoding/json fails: %v", v, err)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("canal %q: fast %+v, encoding/json %+v", v, got, want)
			}
		case FormatDebezium:
			got, ok := fastDebezium(v)
			if !ok {
				return false
			}
			var want debeziumEvent
			if err := json.Unmarshal(v, &want); err != nil {
				t.Errorf("fast debezium decoded %q, encoding/json fails: %v", v, err)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("debezium %q: fast %+v, encoding/json %+v", v, got, want)
			}
		}
		return true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,\ 0123456789.-+eEtrufalsn` + "\x00\x1f\xc3\xa9")
	for format, vals := range corpus {
		fast := 0
		for i, v := range vals {
			if check(format, v) {
				fast++
			} else if i < len(vals)-40 && json.Valid(v) {
				t.Errorf("%s: the fast path declined the generated message %s", format, v)
			}
			for range 30 {
				m := append([]byte(nil), v...)
				for range 1 + rng.IntN(3) {
					p := rng.IntN(len(m) + 1)
					switch rng.IntN(3) {
					case 0: // replace
						if p < len(m) {
							m[p] = alphabet[rng.IntN(len(alphabet))]
						}
					case 1: // insert
						m = append(m[:p], append([]byte{alphabet[rng.IntN(len(alphabet))]}, m[p:]...)...)
					case 2: // delete
						if p < len(m) {
							m = append(m[:p], m[p+1:]...)
						}
					}
				}
				check(format, m)
			}
		}
		if fast == 0 {
			t.Errorf("%s: the fast path never answered", format)
		}
	}
}
