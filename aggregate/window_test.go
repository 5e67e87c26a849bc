package aggregate

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
)

// TestZonedWindows: windows in a time zone start where DuckDB's
// time_bucket(interval, ts, zone) puts them (the expected starts were
// computed by DuckDB 1.5), end at the next start (local days of 23 and 25
// hours across daylight-saving changes), and carry the local date and
// hour of their start.
func TestZonedWindows(t *testing.T) {
	tests := []struct {
		name, tz, size, at string
		start, end         string
		dt                 string
		hour               int
	}{
		{"Shanghai: 23:30 UTC is the next local day", "Asia/Shanghai", "1d", "2026-03-01T23:30:00Z",
			"2026-03-01T16:00:00Z", "2026-03-02T16:00:00Z", "2026-03-02", 0},
		{"Shanghai: 15:59 UTC is still the local day before", "Asia/Shanghai", "1d", "2026-03-01T15:59:59Z",
			"2026-02-28T16:00:00Z", "2026-03-01T16:00:00Z", "2026-03-01", 0},
		{"Shanghai: hours", "Asia/Shanghai", "1h", "2026-03-01T23:30:00Z",
			"2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z", "2026-03-02", 7},
		{"Kathmandu (+05:45): hours start at :15 UTC", "Asia/Kathmandu", "1h", "2026-03-01T23:30:00Z",
			"2026-03-01T23:15:00Z", "2026-03-02T00:15:00Z", "2026-03-02", 5},
		{"Kathmandu: days", "Asia/Kathmandu", "1d", "2026-03-01T18:14:59Z",
			"2026-02-28T18:15:00Z", "2026-03-01T18:15:00Z", "2026-03-01", 0},
		{"Kolkata (+05:30): hours start at :30 UTC", "Asia/Kolkata", "1h", "2026-03-01T23:10:00Z",
			"2026-03-01T22:30:00Z", "2026-03-01T23:30:00Z", "2026-03-02", 4},
		{"New York: the spring-forward day has 23 hours", "America/New_York", "1d", "2026-03-08T12:00:00Z",
			"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-08", 0},
		{"New York: 23:00 EDT is the same local day", "America/New_York", "1d", "2026-03-09T03:00:00Z",
			"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-08", 0},
		{"New York: the day before", "America/New_York", "1d", "2026-03-08T04:30:00Z",
			"2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z", "2026-03-07", 0},
		{"New York: the fall-back day has 25 hours", "America/New_York", "1d", "2026-11-01T12:00:00Z",
			"2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", "2026-11-01", 0},
		{"New York: 01:30 EDT, the first of two", "America/New_York", "1h", "2026-11-01T05:30:00Z",
			"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01", 1},
		{"New York: 01:30 EST, the second", "America/New_York", "1h", "2026-11-01T06:30:00Z",
			"2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01", 1},
		{"New York: 2 hours across the gap", "America/New_York", "2h", "2026-03-08T07:30:00Z",
			"2026-03-08T07:00:00Z", "2026-03-08T09:00:00Z", "2026-03-08", 3},
		{"Shanghai: weeks start on Monday", "Asia/Shanghai", "7d", "2026-03-08T07:30:00Z",
			"2026-03-01T16:00:00Z", "2026-03-08T16:00:00Z", "2026-03-02", 0},
		{"Shanghai: 90 minutes", "Asia/Shanghai", "90m", "2026-03-08T07:30:00Z",
			"2026-03-08T07:00:00Z", "2026-03-08T08:30:00Z", "2026-03-08", 15},
		{"UTC named: days", "UTC", "1d", "2026-03-01T23:30:00Z",
			"2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-01", 0},
		{"no zone: epoch-aligned UTC days as before", "", "1d", "2026-03-01T23:30:00Z",
			"2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-01", 0},
		{"no zone: hours", "", "1h", "2026-03-01T23:30:00Z",
			"2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z", "2026-03-01", 23},
	}
	src := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, err := ParseDuration(tt.size)
			if err != nil {
				t.Fatal(err)
			}
			s := Spec{Name: "w", Source: "a.b", Output: "a.c", Time: "ts",
				Window:   Window{Size: Duration(size), TimeZone: tt.tz, LocalColumns: []string{ColDate, ColHour}},
				Measures: []Measure{{Name: "n", Fn: FnCount}}}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			p, err := bind(s, src)
			if err != nil {
				t.Fatal(err)
			}
			at := us(tt.at)
			ws := p.windowStart(at, 0)
			we := p.windowEnd(ws)
			if got := fmtMicros(ws); got != tt.start {
				t.Errorf("window start %s, want %s", got, tt.start)
			}
			if got := fmtMicros(we); got != tt.end {
				t.Errorf("window end %s, want %s", got, tt.end)
			}
			if ws > at || at >= we {
				t.Errorf("window [%s, %s) does not hold %s", fmtMicros(ws), fmtMicros(we), tt.at)
			}
			// Through a cache warmed on other rows: the same windows.
			var c gridCache
			for _, x := range []int64{at - 3*usPerDay, at, we - 1, ws, we, at} {
				if got, want := p.windowStartCached(x, 0, &c), p.windowStart(x, 0); got != want {
					t.Errorf("cached window of %s: %s, want %s", fmtMicros(x), fmtMicros(got), fmtMicros(want))
				}
			}
			// The next window starts where this one ends.
			if next := p.windowStart(we, 0); next != we {
				t.Errorf("the window after starts at %s, want %s", fmtMicros(next), fmtMicros(we))
			}
			day, hour := localParts(p.loc, ws)
			if got := time.Unix(day*86400, 0).UTC().Format(time.DateOnly); got != tt.dt || hour != tt.hour {
				t.Errorf("local dt %s hour %d, want %s %d", got, hour, tt.dt, tt.hour)
			}
		})
	}
}

// TestLocalToInstant: local times resolve as ICU (DuckDB) resolves them.
func TestLocalToInstant(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ wall, want string }{
		{"2026-03-08T01:30:00Z", "2026-03-08T06:30:00Z"}, // EST
		{"2026-03-08T02:30:00Z", "2026-03-08T07:30:00Z"}, // skipped: 03:30 EDT
		{"2026-03-08T03:30:00Z", "2026-03-08T07:30:00Z"}, // EDT
		{"2026-11-01T01:30:00Z", "2026-11-01T06:30:00Z"}, // repeated: the later, EST
		{"2026-11-01T00:30:00Z", "2026-11-01T04:30:00Z"}, // EDT
	} {
		if got := fmtMicros(localToInstant(ny, us(tt.wall))); got != tt.want {
			t.Errorf("%s local: %s, want %s", tt.wall, got, tt.want)
		}
	}
}

// TestZonedSpecs: validation of time zones, steps, local columns and
// first-seen measures; the fingerprint changes with the zone and the step
// and stays as it was for specs without them.
func TestZonedSpecs(t *testing.T) {
	base := func() Spec {
		return Spec{Name: "z", Source: "a.b", Output: "a.c", Time: "ts",
			Window:   Window{Size: Duration(24 * time.Hour)},
			Measures: []Measure{{Name: "n", Fn: FnCount}}}
	}
	for _, tt := range []struct {
		name string
		edit func(*Spec)
		err  string
	}{
		{"zone", func(s *Spec) { s.Window.TimeZone = "Asia/Shanghai" }, ""},
		{"bad zone", func(s *Spec) { s.Window.TimeZone = "Asia/Atlantis" }, "window.time-zone"},
		{"cumulative", func(s *Spec) { s.Window.Step = Duration(time.Minute) }, ""},
		{"step and slide", func(s *Spec) {
			s.Window.Step = Duration(time.Minute)
			s.Window.Slide = Duration(time.Hour)
		}, "not both"},
		{"step not dividing", func(s *Spec) { s.Window.Step = Duration(7 * time.Minute) }, "does not divide"},
		{"step too small", func(s *Spec) { s.Window.Step = Duration(30 * time.Second) }, "more than 1440"},
		{"step not shorter", func(s *Spec) { s.Window.Step = Duration(24 * time.Hour) }, "not shorter"},
		{"local columns", func(s *Spec) { s.Window.LocalColumns = []string{"dt", "hour"} }, ""},
		{"unknown local column", func(s *Spec) { s.Window.LocalColumns = []string{"minute"} }, "not dt or hour"},
		{"local column clashes with a dimension", func(s *Spec) {
			s.Window.LocalColumns = []string{"hour"}
			s.Dimensions = []string{"hour"}
		}, "also"},
		{"new users", func(s *Spec) { s.Measures = append(s.Measures, Measure{"nu", FnNewUsers, "user_id"}) }, ""},
		{"new users need a column", func(s *Spec) { s.Measures = append(s.Measures, Measure{"nu", FnNewUsers, ""}) }, "required"},
		{"new users on a sliding window", func(s *Spec) {
			s.Window.Slide = Duration(time.Hour)
			s.Measures = append(s.Measures, Measure{"ru", FnReturningUsers, "user_id"})
		}, "tumbling or cumulative"},
		{"top of a cumulative window", func(s *Spec) {
			s.Window.Step = Duration(time.Hour)
			s.Dimensions = []string{"k"}
			s.Top = &Top{N: 1, By: "n"}
		}, "cumulative"},
		{"top by new users", func(s *Spec) {
			s.Dimensions = []string{"k"}
			s.Measures = append(s.Measures, Measure{"nu", FnNewUsers, "user_id"})
			s.Top = &Top{N: 1, By: "nu"}
		}, "not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.edit(&s)
			err := s.Validate()
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}

	s := base()
	zoned := base()
	zoned.Window.TimeZone = "Asia/Shanghai"
	other := base()
	other.Window.TimeZone = "Asia/Tokyo"
	cum := zoned
	cum.Window.Step = Duration(time.Minute)
	local := zoned
	local.Window.LocalColumns = []string{ColDate}
	fps := map[string]string{}
	for name, sp := range map[string]Spec{"utc": s, "shanghai": zoned, "tokyo": other, "cumulative": cum} {
		fp := sp.Fingerprint()
		if prev, dup := fps[fp]; dup {
			t.Errorf("%s and %s share fingerprint %s", name, prev, fp)
		}
		fps[fp] = name
	}
	if local.Fingerprint() != zoned.Fingerprint() {
		t.Error("local columns changed the fingerprint; they do not change the states")
	}
	// A spec without a zone or step keeps the fingerprint it had before
	// zones existed (computed by the previous release).
	if got, want := s.Fingerprint(), "f12b2ffba007fd7c9ad0e307"; got != want {
		t.Errorf("fingerprint of a UTC spec %s, want %s as before", got, want)
	}
	for file, want := range map[string]string{"orders_city_5m.yaml": "bff6434ee718317ec8975375", "page_traffic_hourly.yaml": "8460f35b505501da4d5ac349"} {
		if got := exampleSpec(t, file).Fingerprint(); got != want {
			t.Errorf("fingerprint of %s %s, want %s as before", file, got, want)
		}
	}
}

// TestZonedSlidingWindows: sliding windows of local days start every
// local midnight and end size later in local days.
func TestZonedSlidingWindows(t *testing.T) {
	src := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true})
	for _, tt := range []struct {
		tz, at string
		want   [][2]string // [start, end], newest first
	}{
		{"Asia/Shanghai", "2026-03-01T23:30:00Z", [][2]string{
			{"2026-03-01T16:00:00Z", "2026-03-03T16:00:00Z"}, {"2026-02-28T16:00:00Z", "2026-03-02T16:00:00Z"}}},
		{"America/New_York", "2026-03-08T12:00:00Z", [][2]string{
			{"2026-03-08T05:00:00Z", "2026-03-10T04:00:00Z"}, {"2026-03-07T05:00:00Z", "2026-03-09T04:00:00Z"}}},
	} {
		s := Spec{Name: "w", Source: "a.b", Output: "a.c", Time: "ts",
			Window:   Window{Size: Duration(48 * time.Hour), Slide: Duration(24 * time.Hour), TimeZone: tt.tz},
			Measures: []Measure{{Name: "n", Fn: FnCount}}}
		p, err := bind(s, src)
		if err != nil {
			t.Fatal(err)
		}
		var c gridCache
		for k := range p.nWin {
			ws := p.windowStartCached(us(tt.at), k, &c)
			if got := [2]string{fmtMicros(ws), fmtMicros(p.windowEnd(ws))}; got != tt.want[k] {
				t.Errorf("%s %s: window %d is %v, want %v", tt.tz, tt.at, k, got, tt.want[k])
			}
		}
	}
}
