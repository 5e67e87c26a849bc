package table

// DeadLetterSpec is the schema of a dead-letter table: one row per input
// record Floe could not decode or map, with where it came from, its raw
// bytes and the reason. A dead-letter row is committed with the positions
// of its source like any other row, so it lands exactly once.
func DeadLetterSpec(name string) Spec {
	return Spec{
		Name: name,
		Schema: []Field{
			{Name: "source", Type: "string", Required: true, Doc: "source id"},
			{Name: "partition", Type: "string", Required: true, Doc: "source partition: topic/partition, binlog, generator stream/partition"},
			{Name: "position", Type: "long", Required: true, Doc: "offset or position of the record in the partition"},
			{Name: "target_table", Type: "string", Doc: "table the record was meant for"},
			{Name: "key", Type: "binary", Doc: "record key, if any"},
			{Name: "raw", Type: "binary", Doc: "the record's bytes as received"},
			{Name: "reason", Type: "string", Required: true, Doc: "why it was rejected"},
			{Name: "received_at", Type: "timestamptz", Doc: "when Floe read it"},
		},
		Properties: map[string]string{"write.target-file-size-bytes": "67108864"},
	}
}
