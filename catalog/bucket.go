package catalog

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnsureBucket creates the warehouse bucket when it does not exist.
func EnsureBucket(ctx context.Context, cfg Config) error {
	u, err := url.Parse(cfg.Warehouse)
	if err != nil {
		return fmt.Errorf("catalog.warehouse: %w", err)
	}
	cl, err := NewMinioClient(cfg)
	if err != nil {
		return err
	}
	ok, err := cl.BucketExists(ctx, u.Host)
	if err != nil {
		return fmt.Errorf("check bucket %s at %s: %w", u.Host, cfg.S3.Endpoint, err)
	}
	if ok {
		return nil
	}
	if err := cl.MakeBucket(ctx, u.Host, minio.MakeBucketOptions{Region: cfg.S3.Region}); err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", u.Host, err)
	}
	return nil
}

// NewMinioClient returns a client for the configured S3 endpoint.
func NewMinioClient(cfg Config) (*minio.Client, error) {
	if cfg.S3.AccessKeyID == "" || cfg.S3.SecretAccessKey == "" {
		return nil, ErrNoCredentials
	}
	endpoint, secure := "s3.amazonaws.com", true
	if cfg.S3.Endpoint != "" {
		e, err := url.Parse(cfg.S3.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("catalog.s3.endpoint: %w", err)
		}
		endpoint, secure = e.Host, e.Scheme == "https"
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.S3.AccessKeyID, cfg.S3.SecretAccessKey, ""),
		Secure: secure,
		Region: cfg.S3.Region,
	}
	roots, err := cfg.S3.rootCAs()
	if err != nil {
		return nil, err
	}
	if roots != nil {
		tr, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("s3 client for %s: %w", endpoint, err)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
		opts.Transport = tr
	}
	cl, err := minio.New(endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", endpoint, err)
	}
	return cl, nil
}
