package units

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"},
		{128 << 20, "128.0 MiB"},
		{3 << 30, "3.0 GiB"},
		{5 << 40, "5.0 TiB"},
		{1 << 62, "4.0 EiB"},
	} {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2026-01-02T15:04:05Z", want: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{in: " 2026-01-02T15:04:05.25+02:00 ", want: time.Date(2026, 1, 2, 13, 4, 5, 250e6, time.UTC)},
		{in: "2026-01-02T15:04:05", want: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{in: "2026-01-02", want: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
		{in: "2026-13-01", wantErr: true},
	} {
		got, err := ParseTime(tt.in)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseTimeFlag(t *testing.T) {
	if got, err := ParseTimeFlag("-from", ""); err != nil || !got.IsZero() {
		t.Fatalf("empty: %v, %v", got, err)
	}
	if got, err := ParseTimeFlag("-from", "2026-01-01"); err != nil || !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("date: %v, %v", got, err)
	}
	if _, err := ParseTimeFlag("-from", "soon"); err == nil || err.Error()[:6] != "-from:" {
		t.Fatalf("bad time: %v", err)
	}
}

func TestParsePeriod(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: " 0.5d", want: 12 * time.Hour},
		{in: "0s", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "xd", wantErr: true},
		{in: "1 week", wantErr: true},
	} {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
