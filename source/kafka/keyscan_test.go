package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// slowPreviousKey is previousKey decoding both images whole (what it did
// before scanning for the key columns).
func slowPreviousKey(r *keyedRow, keys []string) ([]byte, bool, error) {
	if r.prev == nil {
		return nil, false, nil
	}
	prev, err := members(r.prev)
	if err != nil {
		return nil, false, fmt.Errorf("previous image: %w", err)
	}
	if r.partial {
		changed := false
		for _, k := range keys {
			if _, in := prev[k]; in {
				changed = true
			}
		}
		if !changed {
			return nil, false, nil
		}
		img, err := members(r.image)
		if err != nil {
			return nil, false, err
		}
		for _, k := range keys {
			if _, in := prev[k]; !in {
				prev[k] = img[k]
			}
		}
		old, err := keyObject(prev, keys)
		if err != nil {
			return nil, false, fmt.Errorf("previous key: %w", err)
		}
		return old, true, nil
	}
	old, err := keyObject(prev, keys)
	if err != nil {
		return nil, false, fmt.Errorf("previous key: %w", err)
	}
	cur, err := rowKey(r.image, keys)
	if err != nil {
		return nil, false, err
	}
	return old, !bytes.Equal(old, cur), nil
}

// TestKeyScanMatchesDecoding: the key scanner gives what decoding the
// images with encoding/json gives (keys, moved keys, errors), for valid
// JSON images as envelopes carry them.
func TestKeyScanMatchesDecoding(t *testing.T) {
	images := []string{
		`{"id":1,"v":"a"}`,
		` { "id" : 1 , "v" : "a" } `,
		`{"v":{"id":2,"x":[1,{"id":3}]},"id":1}`,
		`{"v":"}\"id\":{[","id":1,"w":[]}`,
		`{"id":1,"id":2}`,
		`{"id":null,"v":1}`,
		`{"v":1}`,
		`{}`,
		`{"id":"x","t":"2"}`,
		`{"id":1.0,"t":"2"}`,
		`{"\u0069d":7}`,
		`{"id":7,"\u0069d":8}`,
		`{"ïd":7,"id":3}`,
		`{"id":true,"t":false,"n":null,"e":1e3}`,
		`[1,2]`,
		`"id"`,
		`{"id":1,"t":"a","region":{"a":[{"b":"}"}]},"x":-2.5E-3}`,
	}
	keySets := [][]string{{"id"}, {"id", "t"}, {"t", "id"}}
	for _, keys := range keySets {
		for _, img := range images {
			if !json.Valid([]byte(img)) {
				t.Fatalf("invalid test image %s", img)
			}
			got, gerr := envelopeKey([]byte(img), keys)
			want, werr := rowKey([]byte(img), keys)
			if !bytes.Equal(got, want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("keys %v, image %s: envelopeKey %s, %v; rowKey %s, %v", keys, img, got, gerr, want, werr)
			}
			for _, prev := range images {
				for _, partial := range []bool{false, true} {
					r := &keyedRow{op: "update", image: json.RawMessage(img), prev: json.RawMessage(prev), partial: partial}
					got, gmoved, gerr := previousKey(r, keys)
					want, wmoved, werr := slowPreviousKey(r, keys)
					if !wmoved && !gmoved {
						got, want = nil, nil // callers read the key only when it moved
					}
					if !bytes.Equal(got, want) || gmoved != wmoved || fmt.Sprint(gerr) != fmt.Sprint(werr) {
						t.Errorf("keys %v, image %s, prev %s, partial %v: got %s %v %v, want %s %v %v",
							keys, img, prev, partial, got, gmoved, gerr, want, wmoved, werr)
					}
				}
			}
		}
	}
}
