package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPostgresURIPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file s3cr'et\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, uri, file, env, want string
	}{
		{name: "no password anywhere", uri: "postgres://floe@h:5432/db", want: "postgres://floe@h:5432/db"},
		{name: "file into URL", uri: "postgres://floe@h:5432/db", file: pwFile, want: "postgres://floe:from-file%20s3cr%27et@h:5432/db"},
		{name: "env beats file and uri", uri: "postgres://floe:old@h:5432/db", file: pwFile, env: "e@nv", want: "postgres://floe:e%40nv@h:5432/db"},
		{name: "keyword DSN", uri: "host=h user=floe dbname=db", file: pwFile, want: `host=h user=floe dbname=db password='from-file s3cr\'et'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvCatalogPassword, tt.env)
			c := Config{Type: TypePostgres, URI: tt.uri, PasswordFile: tt.file}
			got, err := c.postgresURI()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("postgresURI = %q; want %q", got, tt.want)
			}
			if r := redact(got); strings.Contains(r, "s3cr") || strings.Contains(r, "e@nv") || strings.Contains(r, "nv@h") {
				t.Fatalf("redact(%q) = %q shows the password", got, r)
			}
		})
	}
}

func TestPasswordFileErrors(t *testing.T) {
	t.Setenv(EnvCatalogPassword, "")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{Type: TypePostgres, URI: "postgres://floe@h/db", PasswordFile: "/nonexistent/pw"},
		{Type: TypePostgres, URI: "postgres://floe@h/db", PasswordFile: empty},
	} {
		if _, err := c.postgresURI(); err == nil || !strings.Contains(err.Error(), "catalog.password-file") {
			t.Errorf("%s: err %v; want one naming catalog.password-file", c.PasswordFile, err)
		}
	}
	c := Config{Type: TypeSQLite, URI: "x.db", Warehouse: "wh", PasswordFile: empty}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "catalog.password-file") {
		t.Errorf("sqlite with a password file: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, uri := range []string{
		"postgres://floe:hunter2@h:5432/db",
		"postgres://floe:hun%zzter2@h:5432/db", // does not parse
		"host=h user=floe password=hunter2 dbname=db",
		`host=h password='hun\'ter2' dbname=db`,
	} {
		if r := redact(uri); strings.Contains(r, "hunter2") || strings.Contains(r, "ter2") {
			t.Errorf("redact(%q) = %q", uri, r)
		}
	}
}

func TestS3CAFile(t *testing.T) {
	if _, err := (S3Config{}).rootCAs(); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, "/nonexistent/ca.pem"} {
		if _, err := (S3Config{CAFile: f}).rootCAs(); err == nil || !strings.Contains(err.Error(), "catalog.s3.ca-file") {
			t.Errorf("ca-file %s: %v", f, err)
		}
	}
}
