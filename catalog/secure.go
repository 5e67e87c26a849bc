package catalog

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// rootCAs are the system's certificate authorities plus those of
// s3.ca-file, or nil when no CA file is configured (the system's alone).
func (s S3Config) rootCAs() (*x509.CertPool, error) {
	if s.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read catalog.s3.ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read catalog.s3.ca-file %s: no PEM certificates in it", s.CAFile)
	}
	return pool, nil
}

// password is the PostgreSQL catalog's password from FLOE_CATALOG_PASSWORD
// or password-file, or "" when neither is set.
func (c *Config) password() (string, error) {
	if v := os.Getenv(EnvCatalogPassword); v != "" {
		return v, nil
	}
	if c.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("read catalog.password-file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("read catalog.password-file %s: the file is empty", c.PasswordFile)
	}
	return pw, nil
}

// postgresURI is the catalog's DSN with the password from the environment
// or the password file put in: into the userinfo of a postgres:// URL, as
// password='…' into a keyword/value DSN. It holds a secret: never log it.
func (c *Config) postgresURI() (string, error) {
	pw, err := c.password()
	if err != nil || pw == "" {
		return c.URI, err
	}
	if strings.HasPrefix(c.URI, "postgres://") || strings.HasPrefix(c.URI, "postgresql://") {
		u, err := url.Parse(c.URI)
		if err != nil {
			// url.Parse's error quotes the whole uri, password and all.
			return "", fmt.Errorf("catalog.uri: %s is not a valid postgres:// URL", redact(c.URI))
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, pw)
		return u.String(), nil
	}
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)
	return c.URI + " password='" + esc + "'", nil
}

// redactKeyword hides the value of password= in a keyword/value DSN
// ("host=… user=floe password=secret").
func redactKeyword(dsn string) string {
	i := strings.Index(dsn, "password=")
	if i < 0 {
		return dsn
	}
	rest := dsn[i+len("password="):]
	end := strings.IndexByte(rest, ' ')
	if strings.HasPrefix(rest, "'") {
		end = -1
		for k := 1; k < len(rest); k++ {
			if rest[k] == '\\' {
				k++
				continue
			}
			if rest[k] == '\'' {
				end = k + 1
				break
			}
		}
	}
	if end < 0 {
		return dsn[:i] + "password=xxxxx"
	}
	return dsn[:i] + "password=xxxxx" + rest[end:]
}
