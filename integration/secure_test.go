package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
)

// secureKafkaYAML writes a floe.yaml that ingests topic from brokers with
// the kafka: settings extra (tls, sasl) into dir.
func secureKafkaYAML(t testing.TB, dir string, cc catalog.Config, brokers, topic string, extra map[string]any) string {
	t.Helper()
	k := map[string]any{
		"id": "secure", "brokers": []string{brokers}, "group": "floe-secure-" + filepath.Base(dir),
		"routes":           []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
		"metadata-columns": true, "session-timeout": "3s", "heartbeat-interval": "300ms",
		"fetch-max-wait": "100ms", "unavailable-timeout": "2s",
	}
	for key, v := range extra {
		k[key] = v
	}
	return writeFloeYAML(t, dir, map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"tables":          []any{clicksTable("ods.clicks")},
		"sources":         []any{map[string]any{"type": "kafka", "kafka": k}},
	})
}

// TestKafkaTLSAndSASL ingests from a second, real Kafka 3.9.1 broker over
// TLS with a CA the test made, and over TLS with SASL PLAIN, SCRAM-SHA-256
// and SCRAM-SHA-512 (the password in the config or in
// FLOE_KAFKA_SASL_PASSWORD): every record lands exactly once. A wrong
// password and a missing CA are refused with the reason in the log. No
// log ever holds a password.
func TestKafkaTLSAndSASL(t *testing.T) {
	k := startSecureKafka(t)
	bin := testenv.FloeBinary(t)
	topic := "secure-" + kafkaRandHex(t)
	createTopic(t, []string{k.Plain}, topic, 2)
	const n = 3000
	newClickProducer(t, []string{k.Plain}, topic, 2, 0).produce(t, n)

	tlsOn := map[string]any{"ca-file": k.Certs.CA}
	sasl := func(mech, user, pass string) map[string]any {
		return map[string]any{"mechanism": mech, "username": user, "password": pass}
	}
	tests := []struct {
		name    string
		brokers string
		extra   map[string]any
		env     []string
		wantLog string // "": ingests everything; else refused, logging this
	}{
		{name: "tls", brokers: k.SSL, extra: map[string]any{"tls": tlsOn}},
		{name: "sasl-plain", brokers: k.SASLSSL, extra: map[string]any{"tls": tlsOn, "sasl": sasl("PLAIN", kafkaPlainUser, kafkaPlainPass)}},
		{name: "sasl-scram-sha-256", brokers: k.SASLSSL, extra: map[string]any{"tls": tlsOn, "sasl": sasl("SCRAM-SHA-256", kafkaScramUser, kafkaScramPass)}},
		{name: "sasl-scram-sha-512-env", brokers: k.SASLSSL,
			extra: map[string]any{"tls": tlsOn, "sasl": map[string]any{"mechanism": "SCRAM-SHA-512"}},
			env:   []string{"FLOE_KAFKA_SASL_USERNAME=" + kafkaScramUser, "FLOE_KAFKA_SASL_PASSWORD=" + kafkaScramPass}},
		{name: "wrong-password", brokers: k.SASLSSL, extra: map[string]any{"tls": tlsOn, "sasl": sasl("SCRAM-SHA-256", kafkaScramUser, "wrong-"+kafkaScramPass)},
			wantLog: "SASL_AUTHENTICATION_FAILED"},
		{name: "unknown-ca", brokers: k.SSL, extra: map[string]any{"tls": map[string]any{"enabled": true}}, wantLog: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cc := localWarehouse(t)
			cfg := secureKafkaYAML(t, dir, cc, tt.brokers, topic, tt.extra)
			var flags []string
			if tt.wantLog != "" {
				flags = []string{"-log-level", "debug"} // every attempt is logged
			}
			p := startFloeWith(t, bin, cfg, dir, "ingest", soakEnv(tt.env...), flags...)
			if tt.wantLog == "" {
				waitTable(t, cc, "ods.clicks", p)
				waitIngested(t, cc, topic, n, 2*time.Minute, p)
				p.stop(t)
				verifyKafkaExactlyOnce(t, cc, topic, 2, n, 0)
			} else {
				deadline := time.Now().Add(time.Minute)
				for !strings.Contains(readLog(t, dir), tt.wantLog) && time.Now().Before(deadline) {
					time.Sleep(500 * time.Millisecond)
				}
				// A refusal that lasts is logged at ERROR once, not at
				// every reconnection: watch it for 20 seconds more.
				time.Sleep(20 * time.Second)
				p.stop(t)
				log := readLog(t, dir)
				var errs []string
				attempts := 0
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, "level=ERROR") {
						errs = append(errs, l)
					}
					// A refused connection, not a dial the backoff held.
					if strings.Contains(l, tt.wantLog) && !strings.Contains(l, "backing off") {
						attempts++
					}
				}
				t.Logf("%d refused connections, %d ERROR lines:\n%s", attempts, len(errs), strings.Join(errs, "\n"))
				// Refused connections back off (1 s, doubling, at most 30 s):
				// a handful in 20 s rather than one every 0.6 s.
				if attempts > 15 {
					t.Errorf("%d refused connections logged in about 20 s; want them spaced out by a backoff", attempts)
				}
				if len(errs) > 3 {
					t.Errorf("%d lines at ERROR while the broker refused the client; want the refusal logged once (and at most one more state change):\n%s",
						len(errs), lastLines(strings.Join(errs, "\n"), 10))
				}
				if !strings.Contains(log, tt.wantLog) {
					t.Fatalf("the log does not say %q:\n%s", tt.wantLog, lastLines(log, 30))
				}
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, tt.wantLog) {
						t.Logf("refused: %s", l)
						break
					}
				}
			}
			grepSecrets(t, "floe ingest", readLog(t, dir), kafkaPlainPass, kafkaScramPass)
		})
	}
}

// waitTable waits until floe created the table, failing if p exits.
func waitTable(t testing.TB, cc catalog.Config, name string, p *floeProc) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := cat.CheckTableExists(context.Background(), strings.Split(name, "."))
		if err == nil && ok {
			return
		}
		if err, ok := p.exited(); ok {
			t.Fatalf("%s exited: %v", p.name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %s not created within a minute (%v)", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readLog(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ingest.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// genIngest runs floe ingest over a finite generator stream (4 × 2000
// records) into cc, with the catalog: section cat, until it ends, and
// checks every record landed exactly once. env is added to the process's.
func genIngest(t *testing.T, cc catalog.Config, cat map[string]any, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := writeFloeYAML(t, dir, map[string]any{
		"catalog":         cat,
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"sources": []any{map[string]any{"type": "gen", "gen": map[string]any{
			"id": "gen", "seed": 7, "partitions": 4, "rows-per-partition": 2000,
			"batch-rows": 1000, "rate": 20000, "bad-fraction": 0.003,
		}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.FloeBinary(t), "ingest", "-config", cfg, "-log-level", "debug")
	cmd.Env = soakEnv(env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("floe ingest: %v\n%s", err, lastLines(string(out), 30))
	}
	verifyExactlyOnce(t, cc, 4, 2000)
	return string(out)
}

// TestMinIOOverTLS writes and reads a warehouse on a second MinIO that
// serves https with a certificate of a CA the test made, trusted through
// catalog.s3.ca-file; without it Floe refuses the server's certificate.
func TestMinIOOverTLS(t *testing.T) {
	endpoint, certs := startTLSMinIO(t)
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: "s3://floe-tls/wh",
		S3: catalog.S3Config{Endpoint: endpoint, Region: "us-east-1", AccessKeyID: minioTLSUser, SecretAccessKey: minioTLSPass, CAFile: certs.CA}}
	cat := catalogYAML(cc)
	cat["s3"].(map[string]any)["ca-file"] = certs.CA
	out := genIngest(t, cc, cat)
	grepSecrets(t, "floe ingest", out, minioTLSPass)

	// The CA from the environment instead.
	delete(cat["s3"].(map[string]any), "ca-file")
	cfg := writeFloeYAML(t, t.TempDir(), map[string]any{"catalog": cat})
	list := exec.Command(testenv.FloeBinary(t), "table", "-config", cfg, "list")
	list.Env = soakEnv(catalog.EnvS3CAFile + "=" + certs.CA)
	if b, err := list.CombinedOutput(); err != nil || !strings.Contains(string(b), "events") {
		t.Fatalf("floe table list with %s: %v\n%s", catalog.EnvS3CAFile, err, b)
	}
	// Without the CA.
	noCA := exec.Command(testenv.FloeBinary(t), "table", "-config", cfg, "list")
	noCA.Env = soakEnv()
	b, err := noCA.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "certificate") {
		t.Fatalf("floe table list without the CA: %v; want a certificate error:\n%s", err, b)
	}
	grepSecrets(t, "floe table list", string(b), minioTLSPass)
}

// TestPostgresCatalogPassword uses a PostgreSQL catalog that takes only
// scram-sha-256 logins, with the password from FLOE_CATALOG_PASSWORD and
// from catalog.password-file, never in the yaml; a wrong password is
// refused, and no output holds the password.
func TestPostgresCatalogPassword(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil && os.Getenv("FLOE_PG_DSN") == "" && !testing.Short() {
		t.Skip("PostgreSQL is not installed (integration/engines/postgres.sh installs it; `make test-integration` runs this test)")
	}
	dsn := startPasswordPostgres(t)
	pwFile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pwFile, []byte(pgPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"env", "file"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cc := catalog.Config{Type: catalog.TypePostgres, Name: "floe_" + how, URI: dsn, Warehouse: filepath.Join(dir, "warehouse")}
			cat := catalogYAML(cc)
			var env []string
			if how == "env" {
				env = []string{catalog.EnvCatalogPassword + "=" + pgPass}
				t.Setenv(catalog.EnvCatalogPassword, pgPass) // for verifyExactlyOnce's catalog.Open
			} else {
				cc.PasswordFile = pwFile
				cat["password-file"] = pwFile
			}
			out := genIngest(t, cc, cat, env...)
			grepSecrets(t, "floe ingest", out, pgPass)
		})
	}
	t.Run("wrong", func(t *testing.T) {
		cfg := writeFloeYAML(t, t.TempDir(), map[string]any{"catalog": map[string]any{"type": "postgres", "uri": dsn, "warehouse": t.TempDir()}})
		cmd := exec.Command(testenv.FloeBinary(t), "table", "-config", cfg, "list")
		cmd.Env = soakEnv(catalog.EnvCatalogPassword + "=wrong-" + pgPass)
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), "password authentication failed") {
			t.Fatalf("floe table list with a wrong password: %v; want password authentication failed:\n%s", err, b)
		}
		grepSecrets(t, "floe table list", string(b), pgPass)
	})
}
