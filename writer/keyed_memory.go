package writer

// indexGaugesLocked sets the index metrics; k.mu must be held or k not
// yet shared.
func (k *KeyedTable) indexGaugesLocked() {
	k.w.m.indexKeys.WithLabelValues(k.name).Set(float64(k.index.Len()))
	k.w.m.indexBytes.WithLabelValues(k.name).Set(float64(k.index.Bytes()))
}

// IndexBytes is the memory of the table's key index, as
// floe_writer_keyed_index_bytes reports it.
func (k *KeyedTable) IndexBytes() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.index.Bytes()
}
