package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
)

// Secrets the configs of TestSecretsNeverPrinted hold.
const (
	secretSASL  = "Kafka-Sasl-Secret-55aa"
	secretMySQL = "MySQL-Secret-77bb"
	secretPG    = "Pg-Secret-99cc"
	secretS3    = "S3-Wrong-Secret-8d1e"
)

// TestSecretsNeverPrinted runs floe's subcommands — ingest (with its
// /metrics, /healthz and /readyz), compact, aggregate, verify, table, read
// — with configs that hold an S3 secret key, a SASL password, a MySQL
// password in the DSN and a PostgreSQL password in the catalog uri, against
// servers that refuse them or cannot be reached, and config mistakes
// beside those secrets; it greps everything they printed for the secrets.
func TestSecretsNeverPrinted(t *testing.T) {
	s3 := testenv.MinIO(t)
	brokers := kafkaBrokers(t)
	mdsn := cdcDSN(t)
	bin := testenv.FloeBinary(t)
	mc, err := mysql.ParseDSN(mdsn)
	if err != nil {
		t.Fatal(err)
	}
	badDSN := fmt.Sprintf("floe_nobody:%s@tcp(%s)/", secretMySQL, mc.Addr)
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: "s3://" + s3.Bucket(t) + "/secrets",
		S3: catalog.S3Config{Endpoint: s3.Endpoint, AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}}
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	full := map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": metrics,
		"tables":          []any{clicksTable("ods.clicks")},
		"sources": []any{
			map[string]any{"type": "kafka", "kafka": map[string]any{
				"id": "secret", "brokers": brokers, "unavailable-timeout": "1s",
				"routes": []any{map[string]any{"topics": []string{"secret-" + kafkaRandHex(t)}, "table": "ods.clicks"}},
				"sasl":   map[string]any{"mechanism": "SCRAM-SHA-256", "username": "alice", "password": secretSASL},
			}},
			map[string]any{"type": "mysql", "mysql": map[string]any{"id": "secretdb", "dsn": badDSN, "include": []string{`nodb\..*`}}},
		},
	}
	cfgPath := writeFloeYAML(t, dir, full)
	spec := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(spec, []byte(soakSpec1), 0o644); err != nil {
		t.Fatal(err)
	}
	// floe's own environment, without the variables that override the
	// config's secrets.
	env := soakEnv()
	// yaml.v3 quotes the first 7 characters of a value in its errors.
	secrets := []string{secretSASL, secretMySQL, secretPG, secretS3, secretSASL[:7], secretMySQL[:7], secretPG[:7], secretS3[:7]}

	// floe ingest, and what its endpoints answer, for 10 seconds.
	t.Run("ingest", func(t *testing.T) {
		cmd := exec.Command(bin, "ingest", "-config", cfgPath, "-log-level", "debug")
		cmd.Env = env
		var out testenv.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var served strings.Builder
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(time.Second)
			for _, path := range []string{"/metrics", "/healthz", "/readyz", "/status"} {
				if resp, err := http.Get("http://" + metrics + path); err == nil {
					b, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					served.WriteString(path + ": " + string(b) + "\n")
				}
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Logf("floe ingest after SIGTERM: %v", err)
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Logf("floe ingest killed after SIGTERM did not stop it: %v", <-done)
		}
		if !strings.Contains(out.String(), "level=") {
			t.Fatalf("floe ingest logged nothing:\n%s", out.String())
		}
		if !strings.Contains(served.String(), "/readyz") {
			t.Errorf("the metrics endpoints did not answer")
		}
		grepSecrets(t, "floe ingest", out.String(), secrets...)
		grepSecrets(t, "floe ingest's endpoints", served.String(), secrets...)
	})

	// Other commands over the same config.
	wrongS3 := map[string]any{"catalog": map[string]any{"type": "sqlite", "uri": filepath.Join(dir, "other.db"), "warehouse": "s3://" + s3.Bucket(t),
		"s3": map[string]any{"endpoint": s3.Endpoint, "access-key-id": s3.AccessKeyID, "secret-access-key": secretS3}}}
	pgURI := map[string]any{"catalog": map[string]any{"type": "postgres", "uri": fmt.Sprintf("postgres://floe:%s@127.0.0.1:%d/floe?connect_timeout=2", secretPG, freePort(t)),
		"warehouse": filepath.Join(dir, "wh")}}
	pgBroken := map[string]any{"catalog": map[string]any{"type": "postgres", "uri": fmt.Sprintf("postgres://floe:%s@127.0.0.1:notaport/floe", secretPG),
		"warehouse": filepath.Join(dir, "wh")}}
	configMistakes := func() map[string]any {
		m := map[string]any{}
		for k, v := range full {
			m[k] = v
		}
		m["writer"] = map[string]any{"commit-interval": "1ms"}
		return m
	}()
	typeMistake := map[string]any{"catalog": catalogYAML(cc), "sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
		"brokers": brokers, "routes": []any{map[string]any{"topics": []string{"x"}, "table": "a.b"}}, "sasl": secretSASL}}}}
	dsnMistake := map[string]any{"catalog": catalogYAML(cc), "sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
		"dsn": "floe:" + secretMySQL + "@tcp(127.0.0.1:notaport)/", "include": []string{`nodb\..*`}}}}}
	write := func(name string, cfg map[string]any) string {
		return writeFloeYAML(t, mkdir(t, filepath.Join(dir, name)), cfg)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"compact", []string{"compact", "-config", cfgPath, "-once"}},
		{"aggregate", []string{"aggregate", "-config", cfgPath, "-spec", spec, "-backfill", "-output", "dws.secret_check"}},
		{"verify aggregate", []string{"verify", "aggregate", "-config", cfgPath, "-spec", spec}},
		{"verify mysql", []string{"verify", "mysql", "-config", cfgPath}},
		{"table list", []string{"table", "-config", cfgPath, "list"}},
		{"table describe", []string{"table", "-config", cfgPath, "describe", "ods.clicks"}},
		{"table describe json", []string{"table", "-config", cfgPath, "-format", "json", "describe", "ods.clicks"}},
		{"read", []string{"read", "-config", cfgPath, "-output", filepath.Join(dir, "out.jsonl"), "ods.clicks"}},
		{"wrong s3 secret", []string{"table", "-config", write("s3", wrongS3), "list"}},
		{"postgres password unreachable", []string{"table", "-config", write("pg", pgURI), "list"}},
		{"postgres uri that does not parse", []string{"table", "-config", write("pgbroken", pgBroken), "list"}},
		{"config mistake beside secrets", []string{"ingest", "-config", write("mistake", configMistakes)}},
		{"secret where a mapping belongs", []string{"ingest", "-config", write("type", typeMistake)}},
		{"dsn with a bad port", []string{"ingest", "-config", write("dsn", dsnMistake)}},
		{"verify mysql with a bad dsn", []string{"verify", "mysql", "-config", write("dsn2", dsnMistake)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(env, "GOTRACEBACK=all")
			out, err := cmd.CombinedOutput()
			t.Logf("floe %s: %v, %d bytes of output; last lines:\n%s", tt.args[0], err, len(out), lastLines(string(out), 3))
			grepSecrets(t, "floe "+strings.Join(tt.args[:1], " "), string(out), secrets...)
		})
	}
}
