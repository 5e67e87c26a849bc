package config

import "testing"

func TestConfigErrorForm(t *testing.T) {
	for _, tt := range []struct {
		e    configError
		want string
	}{
		{configError{file: "floe.yaml", line: 12, key: "writer.commit-interval", reason: "500ms is below the minimum of 1s"}, "floe.yaml:12: writer.commit-interval: 500ms is below the minimum of 1s"},
		{configError{file: "floe.yaml", key: "sources", reason: "none configured"}, "floe.yaml: sources: none configured"},
		{configError{key: "catalog.uri", reason: "required for a postgres catalog"}, "catalog.uri: required for a postgres catalog"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
