package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	dto "github.com/prometheus/client_model/go"

	"github.com/floe-lake/floe/inspect"
	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/table"
)

// Status is what /status answers: the process's readiness, every job and
// source, and every table's recent history.
type Status struct {
	Time    time.Time      `json:"time"`
	Ready   bool           `json:"ready"`
	Reasons []string       `json:"reasons,omitempty"`
	Jobs    []JobStatus    `json:"jobs"`
	Sources []SourceStatus `json:"sources"`
	Tables  []TableStatus  `json:"tables"`
	// KafkaLag is floe_kafka_consumer_lag_records, per partition.
	KafkaLag []KafkaLag `json:"kafka_lag"`
	// BinlogLag is floe_mysql_binlog_lag_seconds, per source.
	BinlogLag []BinlogLag `json:"binlog_lag"`
	// DeadLetters are the dead-letter tables' rows by reason.
	DeadLetters []DeadLetterReason `json:"dead_letters"`
	// CompactionRuns are the newest compaction file groups, newest last.
	CompactionRuns []CompactionRun `json:"compaction_runs"`
	// TablesError is why the tables' part could not be read (the catalog
	// is not open or does not answer); the rest is still current.
	TablesError string `json:"tables_error,omitempty"`
}

// JobStatus is a job's state (daemon.JobStatus) and whether it is failing
// now.
type JobStatus struct {
	daemon.JobStatus
	Failing bool `json:"failing"`
}

// SourceStatus is a source's health.
type SourceStatus struct {
	ID     string `json:"id"`
	Health string `json:"health"` // "ok" or the fault
}

// TableStatus is one table's recent history.
type TableStatus struct {
	Name string `json:"name"`
	// LastCommit is the current snapshot's time; zero for an empty table.
	LastCommit time.Time `json:"last_commit,omitzero"`
	// FreshnessSeconds is now minus the newest committed event time
	// (floe_writer_last_committed_event_time_seconds); -1 when unknown.
	FreshnessSeconds float64 `json:"freshness_seconds"`
	// Rows and Files are the current snapshot's totals.
	Rows  int64 `json:"rows"`
	Files int64 `json:"files"`
	// CommittedRows are the rows this process's writers committed to the
	// table (floe_writer_rows_total).
	CommittedRows float64 `json:"committed_rows"`
	// Snapshots are the newest commits, oldest first.
	Snapshots []SnapshotPoint `json:"snapshots"`
	// FilesPerPartition counts the current data files by partition ("" for
	// an unpartitioned table).
	FilesPerPartition map[string]int `json:"files_per_partition"`
	// FileSizes is a histogram of the current data files' sizes; Before is
	// the one of the snapshot before the newest compaction (replace), if
	// any.
	FileSizes       []Bucket `json:"file_sizes"`
	FileSizesBefore []Bucket `json:"file_sizes_before_compaction,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// SnapshotPoint is one commit of a table.
type SnapshotPoint struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Operation  string    `json:"operation"`
	AddedRows  int64     `json:"added_rows"`
	AddedFiles int64     `json:"added_files"`
	TotalRows  int64     `json:"total_rows"`
	TotalFiles int64     `json:"total_files"`
}

// Bucket is one bar of a file-size histogram: files of size up to Le
// bytes (and above the previous bucket's).
type Bucket struct {
	Le    int64 `json:"le"`
	Files int   `json:"files"`
}

// KafkaLag is one partition's lag.
type KafkaLag struct {
	Source    string  `json:"source"`
	Topic     string  `json:"topic"`
	Partition string  `json:"partition"`
	Records   float64 `json:"records"`
}

// BinlogLag is one MySQL source's lag.
type BinlogLag struct {
	Source  string  `json:"source"`
	Seconds float64 `json:"seconds"`
}

// DeadLetterReason counts a dead-letter table's rows with one reason.
type DeadLetterReason struct {
	Table  string             `json:"table"`
	Reason string             `json:"reason"`
	Count  int64              `json:"count"`
	Latest []DeadLetterSample `json:"latest"`
}

// DeadLetterSample is one dead letter.
type DeadLetterSample struct {
	Source     string    `json:"source"`
	Partition  string    `json:"partition"`
	Position   int64     `json:"position"`
	Target     string    `json:"target_table"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	Raw        string    `json:"raw"`
}

// statusCache holds the tables' part of the status, which reads the
// catalog and the tables' manifests, for Options.StatusRefresh.
type statusCache struct {
	mu     sync.Mutex
	at     time.Time
	tables []TableStatus
	dead   []DeadLetterReason
	err    string
}

// Status gathers the status now; the tables' part may be up to
// Options.StatusRefresh old.
func (s *Service) Status(ctx context.Context) Status {
	now := s.o.Now()
	st := Status{Time: now.UTC(), Ready: true}
	if err := s.Ready(); err != nil {
		st.Ready = false
		st.Reasons = splitErrors(err)
	}
	for _, j := range s.board.Jobs() {
		st.Jobs = append(st.Jobs, JobStatus{JobStatus: j, Failing: failing(j, now, s.cfg.Run.UnavailableTimeout)})
	}
	for _, p := range s.pipes {
		h := "ok"
		if err := p.src.Health(); err != nil {
			h = err.Error()
		}
		st.Sources = append(st.Sources, SourceStatus{ID: p.id, Health: h})
	}
	fams, _ := s.o.Registry.Gather()
	st.KafkaLag, st.BinlogLag = lags(fams)
	s.mu.Lock()
	st.CompactionRuns = slices.Clone(s.runs)
	cat := s.cat
	names := make([]string, 0, len(s.tables))
	for n := range s.tables {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)

	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	switch {
	case cat == nil:
		st.TablesError = "the catalog is not open yet"
	case s.st.at.IsZero() || now.Sub(s.st.at) >= s.o.StatusRefresh:
		s.st.tables, s.st.dead, s.st.err = s.readTables(ctx, cat, names, fams, now)
		s.st.at = now
		fallthrough
	default:
		st.Tables, st.DeadLetters, st.TablesError = s.st.tables, s.st.dead, s.st.err
	}
	if st.Tables == nil {
		st.Tables = []TableStatus{}
	}
	return st
}

// splitErrors returns the messages of a joined error, one per fault.
func splitErrors(err error) []string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// statusReadTimeout bounds a refresh of the tables' status.
const statusReadTimeout = 4 * time.Second

// maxSnapshots is how many commits a table's timeline shows.
const maxSnapshots = 60

// readTables reads each table's history and files, and the dead-letter
// tables' reasons.
func (s *Service) readTables(ctx context.Context, cat icecat.Catalog, names []string, fams []*dto.MetricFamily, now time.Time) ([]TableStatus, []DeadLetterReason, string) {
	// A store or catalog that does not answer must not hold /status up:
	// a table not read in time keeps what the last refresh read, with
	// the error.
	ctx, cancel := context.WithTimeout(ctx, statusReadTimeout)
	defer cancel()
	prev := map[string]TableStatus{}
	for _, ts := range s.st.tables {
		prev[ts.Name] = ts
	}
	eventTimes := map[string]float64{}
	for _, m := range family(fams, "floe_writer_last_committed_event_time_seconds") {
		eventTimes[label(m, "table")] = m.GetGauge().GetValue()
	}
	committed := map[string]float64{}
	for _, m := range family(fams, "floe_writer_rows_total") {
		committed[label(m, "table")] += m.GetCounter().GetValue()
	}
	var (
		out  []TableStatus
		dead []DeadLetterReason
		errs []string
	)
	for _, name := range names {
		ts := TableStatus{Name: name, FreshnessSeconds: -1, FilesPerPartition: map[string]int{}, CommittedRows: committed[name]}
		if et, ok := eventTimes[name]; ok && et > 0 {
			ts.FreshnessSeconds = math.Max(0, now.Sub(time.Unix(0, int64(et*1e9))).Seconds())
		}
		tbl, err := cat.LoadTable(ctx, icecat.ToIdentifier(name))
		if err != nil {
			if errors.Is(err, icecat.ErrNoSuchTable) {
				continue // not created yet
			}
			if p, ok := prev[name]; ok {
				p.FreshnessSeconds, p.CommittedRows = ts.FreshnessSeconds, ts.CommittedRows
				ts = p
			}
			ts.Error = err.Error()
			errs = append(errs, fmt.Sprintf("table %s: %v", name, err))
			out = append(out, ts)
			continue
		}
		if err := tableStatus(ctx, tbl, &ts); err != nil {
			ts.Error = err.Error()
			errs = append(errs, fmt.Sprintf("table %s: %v", name, err))
		}
		if isDeadLetterTable(tbl) {
			d, err := deadLetters(ctx, tbl, name)
			if err != nil {
				errs = append(errs, fmt.Sprintf("dead letters %s: %v", name, err))
			}
			dead = append(dead, d...)
		}
		out = append(out, ts)
	}
	if len(errs) > 0 {
		return out, dead, fmt.Sprint(errs)
	}
	return out, dead, ""
}

func tableStatus(ctx context.Context, tbl *icetable.Table, ts *TableStatus) error {
	snaps := table.DescribeSnapshots(tbl)
	if len(snaps) > maxSnapshots {
		snaps = snaps[len(snaps)-maxSnapshots:]
	}
	val := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	var lastReplace *table.SnapshotInfo
	for i := range snaps {
		si := &snaps[i]
		t, _ := time.Parse(time.RFC3339Nano, si.Timestamp)
		ts.Snapshots = append(ts.Snapshots, SnapshotPoint{
			ID: si.ID, Time: t, Operation: si.Operation, AddedRows: val(si.AddedRecords), AddedFiles: val(si.AddedDataFiles),
			TotalRows: val(si.TotalRecords), TotalFiles: val(si.TotalDataFiles),
		})
		if si.Operation == "replace" {
			lastReplace = si
		}
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return nil
	}
	ts.LastCommit = time.UnixMilli(cur.TimestampMs).UTC()
	ts.Rows, _ = table.SummaryInt(cur, "total-records")
	ts.Files, _ = table.SummaryInt(cur, "total-data-files")
	files, err := inspect.Files(ctx, tbl)
	if err != nil {
		return err
	}
	sizes := make([]int64, len(files))
	for i, f := range files {
		ts.FilesPerPartition[f.Partition]++
		sizes[i] = f.FileSizeBytes
	}
	ts.FileSizes = histogram(sizes)
	if lastReplace != nil && lastReplace.ParentID != nil {
		before, err := fileSizes(ctx, tbl, *lastReplace.ParentID)
		if err == nil {
			ts.FileSizesBefore = histogram(before)
		}
	}
	return nil
}

// fileSizes are the sizes of the data files of snapshot id.
func fileSizes(ctx context.Context, tbl *icetable.Table, id int64) ([]int64, error) {
	scan := tbl.Scan(icetable.WithSnapshotID(id))
	defer func() { _ = scan.Close() }()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(tasks))
	for i, t := range tasks {
		out[i] = t.File.FileSizeBytes()
	}
	return out, nil
}

// histogram buckets sizes by powers of 4 from 64 KiB to 1 GiB.
func histogram(sizes []int64) []Bucket {
	var out []Bucket
	for le := int64(64 << 10); le <= 1<<30; le *= 4 {
		out = append(out, Bucket{Le: le})
	}
	out = append(out, Bucket{Le: math.MaxInt64})
	for _, sz := range sizes {
		for i := range out {
			if sz <= out[i].Le {
				out[i].Files++
				break
			}
		}
	}
	return out
}

// isDeadLetterTable reports whether tbl has the dead-letter schema
// (table.DeadLetterSpec).
func isDeadLetterTable(tbl *icetable.Table) bool {
	sc := tbl.Schema()
	for _, c := range []string{"source", "partition", "position", "raw", "reason", "received_at"} {
		if _, ok := sc.FindFieldByName(c); !ok {
			return false
		}
	}
	return true
}

// maxDeadLetterRows bounds the rows a status refresh reads of one
// dead-letter table; maxSamples the examples kept per reason.
const (
	maxDeadLetterRows = 200_000
	maxSamples        = 3
)

// deadLetters counts tbl's rows by reason and keeps the newest examples.
func deadLetters(ctx context.Context, tbl *icetable.Table, name string) ([]DeadLetterReason, error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	_, recs, err := tbl.Scan(icetable.WithSelectedFields("source", "partition", "position", "target_table", "raw", "reason", "received_at")).ToArrowRecords(ctx)
	if err != nil {
		return nil, err
	}
	byReason := map[string]*DeadLetterReason{}
	rows := 0
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		if rows < maxDeadLetterRows {
			addDeadLetters(rec, name, byReason)
		}
		rows += int(rec.NumRows())
		rec.Release()
	}
	out := make([]DeadLetterReason, 0, len(byReason))
	for _, d := range byReason {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out, nil
}

func addDeadLetters(rec arrow.RecordBatch, name string, by map[string]*DeadLetterReason) {
	col := func(n string) arrow.Array {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) == 0 {
			return nil
		}
		return rec.Column(idx[0])
	}
	str := func(a arrow.Array, i int) string {
		switch c := a.(type) {
		case *array.String:
			return c.Value(i)
		case *array.LargeString:
			return c.Value(i)
		case *array.Binary:
			return string(c.Value(i))
		case *array.LargeBinary:
			return string(c.Value(i))
		}
		return ""
	}
	src, part, pos, target, raw, reason, recv := col("source"), col("partition"), col("position"), col("target_table"), col("raw"), col("reason"), col("received_at")
	for i := range int(rec.NumRows()) {
		r := str(reason, i)
		d := by[r]
		if d == nil {
			d = &DeadLetterReason{Table: name, Reason: r}
			by[r] = d
		}
		d.Count++
		smp := DeadLetterSample{Source: str(src, i), Partition: str(part, i), Target: str(target, i)}
		if p, ok := pos.(*array.Int64); ok {
			smp.Position = p.Value(i)
		}
		if t, ok := recv.(*array.Timestamp); ok && t.IsValid(i) {
			smp.ReceivedAt = time.UnixMicro(int64(t.Value(i))).UTC()
		}
		if raw != nil && raw.IsValid(i) {
			smp.Raw = truncate(str(raw, i), 200)
		}
		d.Latest = append(d.Latest, smp)
		sort.SliceStable(d.Latest, func(a, b int) bool { return d.Latest[a].ReceivedAt.After(d.Latest[b].ReceivedAt) })
		if len(d.Latest) > maxSamples {
			d.Latest = d.Latest[:maxSamples]
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// family returns the metrics of the family named name.
func family(fams []*dto.MetricFamily, name string) []*dto.Metric {
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// lags reads the Kafka and binlog lags from the gathered metrics.
func lags(fams []*dto.MetricFamily) ([]KafkaLag, []BinlogLag) {
	kl := []KafkaLag{}
	for _, m := range family(fams, "floe_kafka_consumer_lag_records") {
		kl = append(kl, KafkaLag{Source: label(m, "source"), Topic: label(m, "topic"), Partition: label(m, "partition"), Records: m.GetGauge().GetValue()})
	}
	sort.Slice(kl, func(i, j int) bool {
		a, b := kl[i], kl[j]
		if a.Source != b.Source || a.Topic != b.Topic {
			return a.Source+"\x00"+a.Topic < b.Source+"\x00"+b.Topic
		}
		pa, _ := strconv.Atoi(a.Partition)
		pb, _ := strconv.Atoi(b.Partition)
		return pa < pb
	})
	bl := []BinlogLag{}
	for _, m := range family(fams, "floe_mysql_binlog_lag_seconds") {
		bl = append(bl, BinlogLag{Source: label(m, "source"), Seconds: m.GetGauge().GetValue()})
	}
	sort.Slice(bl, func(i, j int) bool { return bl[i].Source < bl[j].Source })
	return kl, bl
}
