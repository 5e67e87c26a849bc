// Package testenv gives Floe's tests the real servers and programs they need:
// the local MinIO server started by integration/minio.sh (or `make test`), the
// warehouses a catalog test runs against, and the floe binary for tests that
// run it as a subprocess (the crash tests).
//
// Tests that need MinIO skip under -short and fail, saying how to start it,
// when it is not running.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-lake/floe/catalog"
)

// howToStart is appended to every "MinIO is not running" failure.
const howToStart = "MinIO is not running: start it with `eval $(integration/minio.sh start)` (or run `make test`)"

// S3 is an S3-compatible server for tests: the local MinIO.
type S3 struct {
	Endpoint        string
	AccessKeyID     string
	SecretAccessKey string
}

// MinIO returns the local MinIO server named by FLOE_S3_ENDPOINT,
// FLOE_S3_ACCESS_KEY_ID and FLOE_S3_SECRET_ACCESS_KEY. Under -short it skips
// the test; when the variables are unset or the server does not answer its
// health check within 2 s it fails the test, saying how to start MinIO.
func MinIO(t testing.TB) S3 {
	t.Helper()
	if testing.Short() {
		t.Skip("needs MinIO; skipped under -short")
	}
	s := S3{
		Endpoint:        os.Getenv(catalog.EnvS3Endpoint),
		AccessKeyID:     os.Getenv(catalog.EnvS3AccessKeyID),
		SecretAccessKey: os.Getenv(catalog.EnvS3SecretAccessKey),
	}
	if s.Endpoint == "" || s.AccessKeyID == "" || s.SecretAccessKey == "" {
		t.Fatalf("%s (%s, %s or %s is not set)", howToStart,
			catalog.EnvS3Endpoint, catalog.EnvS3AccessKeyID, catalog.EnvS3SecretAccessKey)
	}
	if err := live(s.Endpoint, 2*time.Second); err != nil {
		t.Fatalf("%s (%s=%s: %v)", howToStart, catalog.EnvS3Endpoint, s.Endpoint, err)
	}
	return s
}

// live asks MinIO's liveness endpoint, giving up after timeout.
func live(endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/minio/health/live", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // nothing to do about a failed close of a drained health response
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check answered %s", resp.Status)
	}
	return nil
}

// Bucket returns a fresh bucket name, unique to this call: "floe-test-" and
// 16 lower-case hex digits. It does not create the bucket; Floe's catalog
// does that when it opens an s3:// warehouse.
func (s S3) Bucket(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random bucket name: %v", err)
	}
	return "floe-test-" + hex.EncodeToString(b[:])
}

// Warehouse is a catalog configuration a test can open.
type Warehouse struct {
	// Name is "local" or "minio"; use it as the subtest's name.
	Name string
	// Config is ready for catalog.Open: a SQLite catalog in a temporary
	// directory and a warehouse there (local) or in a fresh MinIO bucket.
	Config catalog.Config
}

// Warehouses returns the warehouses a storage test should run against: a
// local directory and, unless -short, a fresh bucket on the local MinIO (the
// test fails when MinIO is not running). Use them as
//
//	for _, wh := range testenv.Warehouses(t) {
//		t.Run(wh.Name, func(t *testing.T) { ... catalog.Open(ctx, wh.Config) ... })
//	}
func Warehouses(t *testing.T) []Warehouse {
	t.Helper()
	dir := t.TempDir()
	whs := []Warehouse{{
		Name: "local",
		Config: catalog.Config{
			Type:      catalog.TypeSQLite,
			Name:      "floe",
			URI:       filepath.Join(dir, "catalog.db"),
			Warehouse: filepath.Join(dir, "warehouse"),
		},
	}}
	if testing.Short() {
		return whs
	}
	s3 := MinIO(t)
	whs = append(whs, Warehouse{
		Name: "minio",
		Config: catalog.Config{
			Type:      catalog.TypeSQLite,
			Name:      "floe",
			URI:       filepath.Join(t.TempDir(), "catalog.db"),
			Warehouse: "s3://" + s3.Bucket(t) + "/wh",
			S3: catalog.S3Config{
				Endpoint:        s3.Endpoint,
				Region:          "us-east-1",
				AccessKeyID:     s3.AccessKeyID,
				SecretAccessKey: s3.SecretAccessKey,
			},
		},
	})
	return whs
}

// buildFloe builds ./cmd/floe once per test binary. Floe avoids package-level
// mutable state; this once-guarded build cache, for tests only, is the
// exception, so that every crash test of a package shares one build.
var buildFloe = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find the go command: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	// One binary per source tree, replaced on each build (the go build cache
	// makes rebuilds cheap), so that test runs leave nothing new behind. It
	// is built under a temporary name and renamed into place, which is atomic:
	// test binaries of other packages building at the same time, or running
	// the previous build, are not disturbed.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "floe-testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "floe-"+hex.EncodeToString(sum[:6]))
	tmp, err := os.CreateTemp(dir, "build-*")
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone already after a successful rename
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp.Name(), "./cmd/floe")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("go build ./cmd/floe in %s: %w\n%s", root, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
})

// moduleRoot is the directory of the go.mod above the working directory (a
// test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FloeBinary returns the path of a floe binary built from this tree, building
// it on the first call in this test binary (with the go command on PATH). It
// is for tests that run floe as a subprocess, e.g. to kill it mid-commit.
func FloeBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildFloe()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return bin
}
