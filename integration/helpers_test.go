package integration

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
)

// catalogYAML is the catalog: section of a floe.yaml for cc, with its S3
// settings.
func catalogYAML(cc catalog.Config) map[string]any {
	return map[string]any{
		"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse,
		"s3": map[string]any{"endpoint": cc.S3.Endpoint, "access-key-id": cc.S3.AccessKeyID, "secret-access-key": cc.S3.SecretAccessKey},
	}
}

// writeFloeYAML writes cfg as dir/floe.yaml and returns its path.
func writeFloeYAML(t testing.TB, dir string, cfg map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "floe.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
