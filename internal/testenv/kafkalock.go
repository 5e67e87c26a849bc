package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// KafkaLock holds a lock on the shared local Kafka broker until the test
// ends: shared for a test that uses the broker, exclusive for one that
// restarts it (integration's TestKafkaBrokerRestart). Packages' tests run
// in parallel processes (go test ./...), and without it a test of one
// package saw the broker another package's test had just stopped. The
// lock is a flock(2) on a file in the system's temporary directory, so it
// spans processes; a process that dies releases it.
func KafkaLock(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "floe-test-kafka-broker.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("kafka test lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		_ = f.Close()
		t.Fatalf("kafka test lock: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
}
