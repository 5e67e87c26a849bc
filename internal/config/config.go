// Package config reads floe.yaml, the one file that describes a Floe
// deployment: catalog and storage, writer, compaction, tables and sources.
// Load decodes the file through a yaml.Node so that every mistake names its
// place — FILE:LINE: key.path: reason — and finds them all before a
// command creates anything: syntax, unknown keys and values of the wrong
// type anywhere in the file, then the validation of the sections the
// command uses (Section), so that a command does not need the environment
// of sections it never runs (floe table needs no Kafka brokers). Each
// component keeps its own Config with defaults and Validate; this package
// only puts them together and names the line.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/yamlkeys"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/transform"
	"github.com/floe-lake/floe/writer"
)

// File is floe.yaml: one file describes the catalog, storage, tables,
// sources and daemons. Every component's section has its own Config with
// defaults in one place and Validate().
type File struct {
	Catalog catalog.Config `yaml:"catalog"`
	Writer  writer.Config  `yaml:"writer"`
	// Compaction configures floe compact.
	Compaction compaction.Config `yaml:"compaction"`
	// Tables are created when missing and evolved when their spec adds
	// optional columns.
	Tables []table.Spec `yaml:"tables"`
	// Sources feed the tables: each entry's type names a kind of the
	// registry Load is given.
	Sources []source.Config `yaml:"sources"`
	// Metrics is the address /metrics and /healthz listen on.
	// Default: 127.0.0.1:9464; "" or "off" disables.
	Metrics *string `yaml:"metrics-address"`
	// Aggregations are the aggregation specs floe run follows, each a
	// file path relative to the config file.
	Aggregations []AggregationRef `yaml:"aggregations"`
	// Run configures floe run.
	Run RunConfig `yaml:"run"`
	// Transforms are the transform specs floe run follows (as floe
	// transform -follow does), each a file path relative to the config
	// file.
	Transforms []TransformRef `yaml:"transforms"`

	// Specs are the aggregation specs Load read from Aggregations (when
	// validated), in the same order.
	Specs []aggregate.Spec `yaml:"-"`
	// TransformSpecs are the transform specs Load read from Transforms
	// (when validated), in the same order, each with its output set.
	TransformSpecs []transform.Spec `yaml:"-"`
}

// TransformRef names one transform spec file.
type TransformRef struct {
	// Spec is the spec file as floe transform -spec takes it: YAML, or a
	// .sql file holding the SELECT; relative to the config file's
	// directory unless absolute.
	Spec string `yaml:"spec"`
	// Output is the table written, instead of the spec's output; required
	// for a .sql spec.
	Output string `yaml:"output"`
}

// AggregationRef names one aggregation spec file.
type AggregationRef struct {
	// Spec is the spec file (see examples/aggregate): YAML, or a .sql
	// file holding the SELECT; relative to the config file's directory
	// unless absolute.
	Spec string `yaml:"spec"`
	// Output is the table written: required for a .sql spec; for a YAML
	// spec, when set, it must agree with the spec's output (as floe
	// aggregate's -output).
	Output string `yaml:"output"`
	// Name replaces the spec's name (a YAML spec's name:, a .sql file's
	// base name), which must be unique among the aggregations: a SQL spec
	// and its YAML twin share a base name.
	Name string `yaml:"name"`
}

// RunConfig configures floe run.
type RunConfig struct {
	// Compaction: floe run also compacts the tables (as floe compact does,
	// with the compaction: section). Default true.
	Compaction *bool `yaml:"compaction"`
	// UnavailableTimeout is how long a job may fail — a source, catalog
	// or store that cannot be reached — before /readyz reports the
	// process not ready. Default 30s.
	UnavailableTimeout time.Duration `yaml:"unavailable-timeout"`
}

// ApplyDefaults fills the unset settings of floe run.
func (c *RunConfig) ApplyDefaults() {
	if c.Compaction == nil {
		t := true
		c.Compaction = &t
	}
	if c.UnavailableTimeout == 0 {
		c.UnavailableTimeout = 30 * time.Second
	}
}

// Validate checks floe run's settings.
func (c RunConfig) Validate() error {
	if c.UnavailableTimeout < 0 {
		return fmt.Errorf("run.unavailable-timeout: %s is negative", c.UnavailableTimeout)
	}
	return nil
}

// Section is a set of floe.yaml's sections: the ones a command uses, which
// loadConfig validates.
type Section uint16

const (
	Catalog Section = 1 << iota
	Writer
	Compaction
	Tables
	Sources
	Metrics
	// SourcesRequired: at least one source must be configured (ingest).
	SourcesRequired
	// Aggregations: the aggregation and transform spec files are read
	// and validated.
	Aggregations
	// RunSection: floe run's own settings.
	RunSection

	All = Catalog | Writer | Compaction | Tables | Sources | SourcesRequired | Metrics | Aggregations | RunSection

	// Ingest are what floe ingest uses; floe table, read and
	// aggregate use the catalog only.
	Ingest = Catalog | Writer | Tables | Sources | SourcesRequired | Metrics
	// Compact: floe compact checks orphan-older-than against the
	// writers' commit interval and timeout.
	Compact = Catalog | Writer | Compaction
	// Run is what floe run uses: everything; sources are optional (a
	// process may only compact and aggregate).
	Run = Catalog | Writer | Compaction | Tables | Sources | Metrics | Aggregations | RunSection
)

// Load reads a config file and validates the sections in need; an
// empty path gives the embedded defaults. Every section is checked for
// syntax, unknown keys and values of the wrong type; only the sections in
// need are validated, so that a command does not need the environment of
// sections it never uses (floe table needs no Kafka brokers). Nothing is
// created. The error is an Errors: every mistake
// found, one per line, as FILE:LINE: key.path: reason.
func Load(path string, need Section, reg *source.Registry) (*File, error) {
	cfg := &File{}
	l := &configLoader{file: path, reg: reg}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		l.decode(b, cfg)
		if len(l.errs) > 0 {
			return nil, l.err()
		}
	}
	l.validate(cfg, need)
	if len(l.errs) > 0 {
		return nil, l.err()
	}
	return cfg, nil
}

// validate applies the defaults of every section and validates the ones in
// need.
func (l *configLoader) validate(cfg *File, need Section) {
	cfg.Catalog.ApplyDefaults()
	cfg.Writer.ApplyDefaults()
	cfg.Compaction.ApplyDefaults()
	cfg.Run.ApplyDefaults()
	check := func(s Section, key string, err error) bool {
		if need&s == 0 {
			return true
		}
		if err != nil {
			l.addKeyed(key, err)
			return false
		}
		return true
	}
	check(Catalog, "catalog", cfg.Catalog.Validate())
	writerOK := check(Writer, "writer", cfg.Writer.Validate())
	compactionOK := check(Compaction, "compaction", cfg.Compaction.Validate())
	if need&(Writer|Compaction) == Writer|Compaction && writerOK && compactionOK {
		if err := cfg.Compaction.ValidateWith(cfg.Writer.CommitInterval, cfg.Writer.CommitTimeout); err != nil {
			l.addKeyed("compaction", err)
		}
	}
	if need&Tables != 0 {
		names := make(map[string]int, len(cfg.Tables))
		for i, s := range cfg.Tables {
			key := fmt.Sprintf("tables[%d]", i)
			if err := s.Validate(); err != nil {
				if se := (*table.SpecError)(nil); errors.As(err, &se) {
					l.add(key+"."+se.Key, se.Reason)
				} else {
					l.addKeyed(key, err)
				}
				continue
			}
			if j, dup := names[s.Name]; dup {
				l.add(key+".name", fmt.Sprintf("table %s is also tables[%d]", s.Name, j))
				continue
			}
			names[s.Name] = i
		}
	}
	if len(cfg.Sources) == 0 && need&SourcesRequired != 0 {
		l.add("sources", "none configured")
	}
	for i := range cfg.Sources {
		// Every entry decodes (a typo anywhere is an error); only a
		// command that runs sources validates them.
		key := fmt.Sprintf("sources[%d]", i)
		err := cfg.Sources[i].Decode(l.reg, key)
		if err == nil && need&Sources != 0 {
			err = cfg.Sources[i].Resolve(l.reg, key)
		}
		if err != nil {
			l.addKeyed(key, err)
		}
	}
	check(RunSection, "run", cfg.Run.Validate())
	if need&Aggregations != 0 {
		l.loadSpecs(cfg)
		l.loadTransforms(cfg)
	}
	if need&Metrics != 0 && cfg.Metrics != nil {
		if a := *cfg.Metrics; a != "" && a != "off" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				l.add("metrics-address", fmt.Sprintf("%q is not host:port or off", a))
			}
		}
	}
}

// loadSpecs reads and validates the aggregation specs, relative to the
// config file's directory; two specs may not write one output.
func (l *configLoader) loadSpecs(cfg *File) {
	dir := filepath.Dir(l.file)
	names, outputs := map[string]int{}, map[string]int{}
	cfg.Specs = cfg.Specs[:0]
	for i, a := range cfg.Aggregations {
		key := fmt.Sprintf("aggregations[%d].spec", i)
		if a.Spec == "" {
			l.add(key, "required")
			continue
		}
		path := a.Spec
		if !filepath.IsAbs(path) && l.file != "" {
			path = filepath.Join(dir, path)
		}
		if strings.EqualFold(filepath.Ext(path), ".sql") && a.Output == "" {
			l.add(fmt.Sprintf("aggregations[%d].output", i), "required for a .sql spec")
			continue
		}
		spec, err := aggregate.LoadSpecFile(path, a.Output)
		if err != nil {
			l.add(key, err.Error())
			continue
		}
		if a.Name != "" {
			spec.Name = a.Name
		}
		if j, dup := names[spec.Name]; dup {
			l.add(key, fmt.Sprintf("spec name %s is also aggregations[%d]'s (name: sets another)", spec.Name, j))
			continue
		}
		if j, dup := outputs[spec.Output]; dup {
			l.add(key, fmt.Sprintf("output %s is also aggregations[%d]'s", spec.Output, j))
			continue
		}
		names[spec.Name], outputs[spec.Output] = i, i
		cfg.Specs = append(cfg.Specs, spec)
	}
}

// loadTransforms reads and validates the transform specs, relative to
// the config file's directory; two specs may not write one output, nor
// one an aggregation writes.
func (l *configLoader) loadTransforms(cfg *File) {
	dir := filepath.Dir(l.file)
	names, outputs := map[string]string{}, map[string]string{}
	for i, a := range cfg.Specs {
		outputs[a.Output] = fmt.Sprintf("aggregations[%d]'s", i)
	}
	cfg.TransformSpecs = cfg.TransformSpecs[:0]
	for i, ref := range cfg.Transforms {
		key := fmt.Sprintf("transforms[%d].spec", i)
		if ref.Spec == "" {
			l.add(key, "required")
			continue
		}
		path := ref.Spec
		if !filepath.IsAbs(path) && l.file != "" {
			path = filepath.Join(dir, path)
		}
		spec, err := transform.LoadSpec(path)
		if err != nil {
			l.add(key, err.Error())
			continue
		}
		if ref.Output != "" {
			spec.Output = ref.Output
		}
		if spec.Output == "" {
			l.add(fmt.Sprintf("transforms[%d].output", i), "required for a spec without output (a .sql file)")
			continue
		}
		if err := spec.Validate(); err != nil {
			l.add(key, err.Error())
			continue
		}
		name := spec.Name
		if name == "" {
			name = spec.Output
		}
		if other, dup := names[name]; dup {
			l.add(key, fmt.Sprintf("transform name %s is also %s", name, other))
			continue
		}
		if other, dup := outputs[spec.Output]; dup {
			l.add(key, fmt.Sprintf("output %s is also %s", spec.Output, other))
			continue
		}
		names[name] = fmt.Sprintf("transforms[%d]'s", i)
		outputs[spec.Output] = names[name]
		cfg.TransformSpecs = append(cfg.TransformSpecs, spec)
	}
}

// configError is one mistake in the config, FILE:LINE: key.path: reason;
// without a file, key.path: reason.
type configError struct {
	file   string
	line   int // 0: the key is not in the file
	key    string
	reason string
}

func (e configError) Error() string {
	var b strings.Builder
	if e.file != "" {
		b.WriteString(e.file)
		if e.line > 0 {
			b.WriteString(":" + strconv.Itoa(e.line))
		}
		b.WriteString(": ")
	}
	if e.key != "" {
		b.WriteString(e.key + ": ")
	}
	b.WriteString(e.reason)
	return b.String()
}

// Errors are the mistakes of one config, in the file's order: Load
// returns them all, one per line.
type Errors []configError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// configLoader decodes a config file through a yaml.Node, so that every
// error can name its line.
type configLoader struct {
	file string
	// root is the document's top-level mapping; nil without a file.
	root *yaml.Node
	// keys and values give the key path of every key node and value node
	// (a sequence item's is "list[i]").
	keys, values map[*yaml.Node]string
	errs         Errors
	reg          *source.Registry
}

func (l *configLoader) err() error {
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].line, l.errs[j].line
		return a != 0 && (b == 0 || a < b)
	})
	return l.errs
}

const sectionNames = "catalog, writer, compaction, tables, sources, metrics-address, aggregations, transforms, run"

// decode parses b into cfg, recording syntax errors, unknown keys at any
// depth and values of the wrong type.
func (l *configLoader) decode(b []byte, cfg *File) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		l.addSyntax(err)
		return
	}
	if len(doc.Content) == 0 {
		return // an empty file
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return
	case root.Kind != yaml.MappingNode:
		l.errs = append(l.errs, configError{file: l.file, line: root.Line, reason: "want a mapping of sections: " + sectionNames})
		return
	}
	l.root = root
	l.keys, l.values = map[*yaml.Node]string{}, map[*yaml.Node]string{}
	l.index(root, "")
	for _, e := range yamlkeys.Unknown[File](root, "") {
		l.addNodeError(e)
	}
	if err := root.Decode(cfg); err != nil {
		var ke *yamlkeys.Error
		var te *yaml.TypeError
		switch {
		case errors.As(err, &ke):
			l.addNodeError(ke)
		case errors.As(err, &te):
			for _, msg := range te.Errors {
				l.addTypeError(msg)
			}
		default:
			// A section's decoder that names the key path
			// (sources[0].type: ...) is located by it.
			if k, reason, ok := strings.Cut(err.Error(), ": "); k == "yaml" {
				l.addSyntax(err)
			} else if msgs := sectionTypeErrors(reason); ok && isKeyPath(k) && msgs != nil {
				for _, msg := range msgs {
					l.addTypeError(msg)
				}
			} else if ok && isKeyPath(k) {
				l.add(k, withoutValues(reason))
			} else {
				l.errs = append(l.errs, configError{file: l.file, reason: withoutValues(err.Error())})
			}
		}
	}
	l.dedup()
}

// index records the key path of n and of every node under it.
func (l *configLoader) index(n *yaml.Node, path string) {
	l.values[n] = path
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := yamlkeys.Join(path, n.Content[i].Value)
			l.keys[n.Content[i]] = p
			l.index(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			l.index(item, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// add records a reason at key path key, on the line of the key or of its
// nearest ancestor in the file.
func (l *configLoader) add(key, reason string) {
	l.errs = append(l.errs, configError{file: l.file, line: l.locate(key), key: key, reason: reason})
}

// addKeyed records a Validate error: its text starts with a key path
// ("writer.commit-interval: 500ms is below the minimum of 1s"); one that
// does not is put under key.
func (l *configLoader) addKeyed(key string, err error) {
	if ke := (*yamlkeys.Error)(nil); errors.As(err, &ke) {
		l.addNodeError(ke)
		return
	}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		for _, msg := range te.Errors {
			l.addTypeError(msg)
		}
		return
	}
	msg := withoutValues(err.Error())
	if k, reason, ok := strings.Cut(msg, ": "); ok && isKeyPath(k) && (k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[")) {
		if msgs := sectionTypeErrors(reason); msgs != nil {
			for _, m := range msgs {
				l.addTypeError(m)
			}
			return
		}
		l.add(k, reason)
		return
	}
	l.add(key, msg)
}

var keyPathRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_.-]+(\[\d+\])*)*$`)

func isKeyPath(s string) bool { return keyPathRe.MatchString(s) }

// unknownKey is the reason of an unknown key. The parenthesis keeps the
// words of yaml.v3's KnownFields error that scripts may have matched.
func unknownKey(key string) string {
	return fmt.Sprintf("unknown key (field %s not found)", key)
}

// addNodeError records an unknown key or an invalid value found by
// yamlkeys, at the full key path of its node.
func (l *configLoader) addNodeError(e *yamlkeys.Error) {
	line := 0
	if e.Node != nil {
		line = e.Node.Line
	}
	if e.Key != "" {
		key, ok := l.keys[e.Node]
		if !ok {
			key = yamlkeys.Join(e.Section, e.Key)
		}
		l.errs = append(l.errs, configError{file: l.file, line: line, key: key, reason: unknownKey(e.Key)})
		return
	}
	key, ok := l.values[e.Node]
	if !ok {
		key = e.Section
	}
	l.errs = append(l.errs, configError{file: l.file, line: line, key: key, reason: e.Reason})
}

var (
	syntaxRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	// typeRe matches one of yaml.v3's unmarshal errors.
	typeRe = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// sectionTypeErrors are the "line N: cannot unmarshal …" lines of a
// section decoder's "yaml: unmarshal errors:" message, or nil.
func sectionTypeErrors(reason string) []string {
	head, rest, ok := strings.Cut(reason, "\n")
	if !ok || head != "yaml: unmarshal errors:" {
		return nil
	}
	var msgs []string
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); !typeRe.MatchString(l) {
			return nil
		}
		msgs = append(msgs, l)
	}
	return msgs
}

// valueRe is the (shortened) value yaml.v3 quotes in its unmarshal errors.
var valueRe = regexp.MustCompile("(cannot unmarshal !!\\w+) `[^`]*`")

// withoutValues drops the values yaml.v3 quotes from its messages: the
// value may be a secret (a password where a mapping belongs), and the
// line says where it is.
func withoutValues(msg string) string { return valueRe.ReplaceAllString(msg, "$1") }

// addSyntax records a YAML syntax error.
func (l *configLoader) addSyntax(err error) {
	if m := syntaxRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.errs = append(l.errs, configError{file: l.file, line: line, reason: m[2]})
		return
	}
	l.errs = append(l.errs, configError{file: l.file, reason: strings.TrimPrefix(err.Error(), "yaml: ")})
}

// addTypeError records one of yaml.v3's "line N: cannot unmarshal !!str
// `abc` into time.Duration" errors at the key path of the value it names.
func (l *configLoader) addTypeError(msg string) {
	m := typeRe.FindStringSubmatch(msg)
	if m == nil {
		l.errs = append(l.errs, configError{file: l.file, reason: withoutValues(msg)})
		return
	}
	line, _ := strconv.Atoi(m[1])
	tag, value, goType := m[2], m[3], m[4]
	n := l.valueAt(line, tag, value)
	key := ""
	if n != nil {
		key, value = l.values[n], n.Value
	}
	l.errs = append(l.errs, configError{file: l.file, line: line, key: key, reason: typeReason(tag, value, goType)})
}

// valueAt finds the value node on line whose tag is tag and whose value
// is value (yaml.v3 shortens long values to their first 7 characters
// and "...").
func (l *configLoader) valueAt(line int, tag, value string) *yaml.Node {
	var best *yaml.Node
	for n := range l.values {
		if n.Line != line || n.ShortTag() != tag {
			continue
		}
		// yaml.v3 cuts long values in its messages to "prefix...".
		cut := strings.HasSuffix(value, "...") && strings.HasPrefix(n.Value, strings.TrimSuffix(value, "..."))
		if value != "" && n.Value != value && !cut {
			continue
		}
		if best == nil || n.Column < best.Column {
			best = n
		}
	}
	return best
}

// typeReason says what a value of the wrong type should have been.
func typeReason(tag, value, goType string) string {
	switch tag {
	case "!!map":
		if strings.HasPrefix(goType, "[]") {
			return "want a list, not a mapping"
		}
		return "want a single value, not a mapping"
	case "!!seq":
		if strings.HasPrefix(goType, "map[") || strings.Contains(goType, ".") {
			return "want a mapping, not a list"
		}
		return "want a single value, not a list"
	}
	q := strconv.Quote(value)
	switch {
	case goType == "time.Duration":
		return q + " is not a duration (like 500ms, 30s, 5m, 1h)"
	case goType == "bool":
		return q + " is not true or false"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return q + " is not an integer"
	case strings.HasPrefix(goType, "float"):
		return q + " is not a number"
	case strings.HasPrefix(goType, "[]"):
		return "want a list"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		return "want a mapping"
	}
	return fmt.Sprintf("%q is not a %s", value, goType)
}

// dedup drops a second error at the same line and key (an unknown key the
// walk and a section's own decoder both found).
func (l *configLoader) dedup() {
	seen := map[configError]bool{}
	out := l.errs[:0]
	for _, e := range l.errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	l.errs = out
}

// locate returns the line of key path key in the file, or of its nearest
// ancestor that the file holds; 0 when there is none. A mapping key may
// itself contain dots (compaction's partial-progress.enabled): the
// longest key that fits wins.
func (l *configLoader) locate(key string) int {
	n, line, rest := l.root, 0, key
	for n != nil && rest != "" {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			i, err := strconv.Atoi(rest[1:max(end, 1)])
			if end < 0 || err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return line
			}
			n, line, rest = n.Content[i], n.Content[i].Line, strings.TrimPrefix(rest[end+1:], ".")
			continue
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		best := -1
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if len(k) > best && (rest == k || strings.HasPrefix(rest, k+".") || strings.HasPrefix(rest, k+"[")) {
				best, next, line = len(k), n.Content[i+1], n.Content[i].Line
			}
		}
		if next == nil {
			return line
		}
		n, rest = next, strings.TrimPrefix(rest[best:], ".")
	}
	return line
}
