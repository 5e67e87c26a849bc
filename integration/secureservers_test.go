package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The secure servers of these tests are second instances, started by the
// test on free ports with their data in the test's temporary directory:
// the shared servers of integration/*.sh are never touched.

// testCerts are a CA made by the test and a server certificate it signed
// for 127.0.0.1 and localhost, as PEM files.
type testCerts struct {
	CA, Cert, Key string // paths
}

func makeCerts(t testing.TB, dir string) testCerts {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCerts{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "public.crt"), Key: filepath.Join(dir, "private.key")}
	for path, block := range map[string]*pem.Block{
		c.CA: {Type: "CERTIFICATE", Bytes: caDER}, c.Cert: {Type: "CERTIFICATE", Bytes: der}, c.Key: {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer runs cmd with its output in logPath until the test ends, and
// waits until ready reports true (failing after timeout or when the process
// exits).
func startServer(t testing.TB, name string, cmd *exec.Cmd, logPath string, timeout time.Duration, ready func() bool) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the process group this test started
		<-exited
	})
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited while starting:\n%s", name, lastLines(string(b), 30))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s not ready after %s:\n%s", name, timeout, lastLines(string(b), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func floeCache() string {
	if v := os.Getenv("FLOE_CACHE"); v != "" {
		return v
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "floe")
}

// Users and passwords of the secure broker.
const (
	kafkaPlainUser = "alice"
	kafkaPlainPass = "alice-plain-Secret-7f3a"
	kafkaScramUser = "bob"
	kafkaScramPass = "bob-scram-Secret-91c2"
)

// secureKafka is a second Kafka 3.9.1 broker with three listeners:
// PLAINTEXT (to create topics and produce), SSL (TLS with the test's CA)
// and SASL_SSL (PLAIN for alice, SCRAM-SHA-256 and -512 for bob).
type secureKafka struct {
	Plain, SSL, SASLSSL string
	Certs               testCerts
}

// startSecureKafka starts the broker from the jars integration/kafka.sh
// resolved into ~/.cache/floe.
func startSecureKafka(t testing.TB) secureKafka {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a second Kafka broker; skipped under -short")
	}
	dir := t.TempDir()
	certs := makeCerts(t, dir)
	ks := filepath.Join(dir, "broker.p12")
	if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", certs.Cert, "-inkey", certs.Key,
		"-out", ks, "-passout", "pass:floe-keystore", "-name", "broker").CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}
	plain, ssl, saslssl, ctrl := freePort(t), freePort(t), freePort(t), freePort(t)
	props := fmt.Sprintf(`listeners=PLAINTEXT://127.0.0.1:%[1]d,SSL://127.0.0.1:%[2]d,SASL_SSL://127.0.0.1:%[3]d,CONTROLLER://127.0.0.1:%[4]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,SSL://127.0.0.1:%[2]d,SASL_SSL://127.0.0.1:%[3]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
ssl.keystore.type=PKCS12
ssl.keystore.location=%[5]s
ssl.keystore.password=floe-keystore
ssl.key.password=floe-keystore
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_%[6]s="%[7]s";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
`, plain, ssl, saslssl, ctrl, ks, kafkaPlainUser, kafkaPlainPass)
	runKafkaBroker(t, dir, ctrl, props,
		"--add-scram", fmt.Sprintf("SCRAM-SHA-256=[name=%s,password=%s]", kafkaScramUser, kafkaScramPass),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", kafkaScramUser, kafkaScramPass))
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	return secureKafka{Plain: addr(plain), SSL: addr(ssl), SASLSSL: addr(saslssl), Certs: certs}
}

// runKafkaBroker formats and starts a single-node KRaft Kafka 3.9.1 in dir
// from the jars integration/kafka.sh resolved into ~/.cache/floe, with its
// controller on port ctrl and the listener settings listeners (listeners,
// advertised.listeners, listener.security.protocol.map and what they need;
// the inter-broker listener is PLAINTEXT); formatArgs go to kafka-storage
// format (SCRAM users). It runs until the test ends.
func runKafkaBroker(t testing.TB, dir string, ctrl int, listeners string, formatArgs ...string) {
	t.Helper()
	start := formatKafkaBroker(t, dir, ctrl, listeners, formatArgs...)
	logPath := filepath.Join(dir, "kafka.log")
	startServer(t, "Kafka broker in "+dir, start(), logPath, 3*time.Minute, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "Kafka Server started")
	})
}

// formatKafkaBroker writes the broker's configuration in dir and formats its
// storage; it returns the command that starts the broker (a new one each
// call, so that a test can restart the broker on the same data).
func formatKafkaBroker(t testing.TB, dir string, ctrl int, listeners string, formatArgs ...string) func() *exec.Cmd {
	t.Helper()
	libs := filepath.Join(floeCache(), "kafka-3.9.1", "libs")
	if _, err := os.Stat(filepath.Join(libs, ".complete")); err != nil {
		t.Fatalf("Kafka's jars are not in %s: run `integration/kafka.sh install` (or `make test`)", libs)
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=%s
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
`, ctrl, filepath.Join(dir, "data")) + listeners
	propsPath := filepath.Join(dir, "server.properties")
	log4j := filepath.Join(dir, "log4j.properties")
	if err := os.WriteFile(propsPath, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log4j, []byte("log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"+
		"log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"+
		"log4j.logger.kafka.server.KafkaRaftServer=INFO\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	java := func(args ...string) *exec.Cmd {
		return exec.Command("java", append([]string{"-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Djava.awt.headless=true", "-Dlog4j.configuration=file:" + log4j, "-cp", libs + "/*"}, args...)...)
	}
	format := java(append([]string{"kafka.tools.StorageTool", "format", "--cluster-id=" + base64.RawURLEncoding.EncodeToString(id[:]), "-c", propsPath}, formatArgs...)...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format the Kafka broker's storage: %v\n%s", err, out)
	}
	return func() *exec.Cmd { return java("kafka.Kafka", propsPath) }
}

// Root user and password of the TLS MinIO.
const (
	minioTLSUser = "floetls"
	minioTLSPass = "floetls-Secret-c0ffee"
)

// startTLSMinIO starts a second MinIO, from the binary integration/minio.sh
// built, serving https with a certificate of a CA the test made. It returns
// the https endpoint and the certificates.
func startTLSMinIO(t testing.TB) (string, testCerts) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a second MinIO; skipped under -short")
	}
	bins, _ := filepath.Glob(filepath.Join(floeCache(), "bin", "minio-*"))
	if len(bins) == 0 {
		t.Fatalf("no MinIO binary in %s: run `integration/minio.sh install` (or `make test`)", filepath.Join(floeCache(), "bin"))
	}
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(filepath.Join(certDir, "CAs"), 0o700); err != nil {
		t.Fatal(err)
	}
	certs := makeCerts(t, certDir)
	port := freePort(t)
	cmd := exec.Command(bins[len(bins)-1], "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--certs-dir", certDir, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+minioTLSUser, "MINIO_ROOT_PASSWORD="+minioTLSPass, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	startServer(t, "TLS MinIO", cmd, filepath.Join(dir, "minio.log"), 2*time.Minute, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return fmt.Sprintf("https://127.0.0.1:%d", port), certs
}

// Role and password of the password PostgreSQL.
const (
	pgUser = "floecat"
	pgPass = "floecat-Secret-5e1f"
)

// startPasswordPostgres starts a second PostgreSQL (Debian's package, as
// integration/engines/postgres.sh installs it) whose only way in over TCP
// is scram-sha-256 with a password, with a role and database floecat. It
// returns the DSN without the password.
func startPasswordPostgres(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a PostgreSQL server; skipped under -short")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed: run `integration/engines/postgres.sh install` (or apt-get install postgresql)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	var as []string // PostgreSQL refuses to run as root: run it as postgres
	dir := t.TempDir()
	if os.Getuid() == 0 {
		as = []string{"runuser", "-u", "postgres", "--"}
		var err error
		if dir, err = os.MkdirTemp("/var/tmp", "floe-pg-pass-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if out, err := exec.Command("chown", "postgres:", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v\n%s", dir, err, out)
		}
	}
	cmdOf := func(name string, args ...string) *exec.Cmd {
		full := append(append(append([]string{}, as...), filepath.Join(bin, name)), args...)
		return exec.Command(full[0], full[1:]...)
	}
	data := filepath.Join(dir, "data")
	pwFile := filepath.Join(dir, "superpw")
	if err := os.WriteFile(pwFile, []byte(pgPass+"-super\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cmdOf("initdb", "-D", data, "-U", "postgres", "--pwfile", pwFile, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Local socket: trust (to create the role); TCP: password only.
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(as) > 0 {
		_ = exec.Command("chown", "postgres:", filepath.Join(data, "pg_hba.conf")).Run()
	}
	port := freePort(t)
	cmd := cmdOf("postgres", "-D", data, "-p", fmt.Sprint(port), "-c", "listen_addresses=127.0.0.1", "-k", dir,
		"-c", "max_connections=50", "-c", "shared_buffers=32MB", "-c", "fsync=off")
	startServer(t, "password PostgreSQL", cmd, filepath.Join(dir, "log"), time.Minute, func() bool {
		return cmdOf("pg_isready", "-h", dir, "-p", fmt.Sprint(port)).Run() == nil
	})
	psql := func(sql string) {
		t.Helper()
		if out, err := cmdOf("psql", "-h", dir, "-p", fmt.Sprint(port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql).CombinedOutput(); err != nil {
			t.Fatalf("psql %s: %v\n%s", sql, err, out)
		}
	}
	psql(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgUser, pgPass))
	psql(fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgUser, pgUser))
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgUser, port, pgUser)
}

// grepSecrets fails the test for every secret that appears in out.
func grepSecrets(t testing.TB, what, out string, secrets ...string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		for _, s := range secrets {
			if s != "" && strings.Contains(sc.Text(), s) {
				t.Errorf("%s printed the secret %q: %s", what, s, sc.Text())
			}
		}
	}
}
