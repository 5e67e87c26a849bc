package writer

// SetStepMaxKeys sets the most output rows a compaction step of k notes
// the keys of (keyedStepMaxKeys); -1: every step moves the index entries
// by a scan of the index.
func SetStepMaxKeys(k *KeyedTable, n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stepMaxKeys = n
}
