package testenv_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/floe-lake/floe/internal/testenv"
)

func TestMinIOSkipsUnderShort(t *testing.T) {
	if !testing.Short() {
		t.Skip("checks the -short behaviour")
	}
	var reached bool
	t.Run("minio", func(t *testing.T) {
		testenv.MinIO(t)
		reached = true
	})
	if reached {
		t.Fatal("MinIO returned under -short; want t.Skip")
	}
}

func TestMinIO(t *testing.T) {
	s := testenv.MinIO(t)
	if !strings.HasPrefix(s.Endpoint, "http") || s.AccessKeyID == "" || s.SecretAccessKey == "" {
		t.Fatalf("MinIO() = %+v; want an http endpoint and credentials", s)
	}
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func TestBucketNamesAreValidAndUnique(t *testing.T) {
	var s testenv.S3
	seen := map[string]bool{}
	for range 100 {
		b := s.Bucket(t)
		if !bucketName.MatchString(b) || !strings.HasPrefix(b, "floe-test-") {
			t.Fatalf("Bucket() = %q; not a valid floe-test- bucket name", b)
		}
		if seen[b] {
			t.Fatalf("Bucket() returned %q twice", b)
		}
		seen[b] = true
	}
}

func TestWarehouses(t *testing.T) {
	whs := testenv.Warehouses(t)
	want := []string{"local"}
	if !testing.Short() {
		want = append(want, "minio")
	}
	if len(whs) != len(want) {
		t.Fatalf("Warehouses() returned %d warehouses; want %v", len(whs), want)
	}
	for i, wh := range whs {
		if wh.Name != want[i] {
			t.Errorf("warehouse %d is %q; want %q", i, wh.Name, want[i])
		}
		cfg := wh.Config
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", wh.Name, err)
		}
		if got := cfg.IsS3(); got != (wh.Name == "minio") {
			t.Errorf("%s: IsS3() = %v", wh.Name, got)
		}
	}
}

func TestFloeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/floe")
	}
	bin := testenv.FloeBinary(t)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is not executable", bin)
	}
	if again := testenv.FloeBinary(t); again != bin {
		t.Fatalf("second FloeBinary() = %q; want the cached %q", again, bin)
	}
}
