package source

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
)

// Options are what a kind's constructor gets besides its settings.
type Options struct {
	// Logger; nil: the source's default (slog.Default()).
	Logger *slog.Logger
	// Registerer for the source's metrics; nil: a private registry.
	Registerer prometheus.Registerer
}

// Settings constrains the settings type C of a kind: *C decodes from the
// kind's YAML section (over the defaults), fills the defaults YAML does not
// set and checks itself, naming the first bad key ("kafka.brokers: ...").
type Settings[C any] interface {
	*C
	ApplyDefaults()
	Validate() error
}

// Kind is a type of source a config names: "type: <name>", with its
// settings in a section named after it beside the type. Make one with
// NewKind; a Registry holds the kinds a program knows.
type Kind struct {
	name     string
	decode   func(n *yaml.Node) (any, error) // nil n: the defaults
	validate func(settings any) error
	build    func(settings any, o Options) (Source, error)
}

// NewKind returns the kind name whose settings are a C: defaults returns
// them before the section is decoded over them (and when the section is
// absent), and build makes a source of validated settings.
func NewKind[C any, P Settings[C]](name string, defaults func() C, build func(C, Options) (Source, error)) Kind {
	return Kind{
		name: name,
		decode: func(n *yaml.Node) (any, error) {
			c := defaults()
			if n != nil && n.ShortTag() != "!!null" {
				if err := n.Decode(&c); err != nil {
					return nil, err
				}
			}
			return &c, nil
		},
		validate: func(s any) error {
			c := P(s.(*C))
			c.ApplyDefaults()
			return c.Validate()
		},
		build: func(s any, o Options) (Source, error) { return build(*s.(*C), o) },
	}
}

// Name is the kind's type name.
func (k Kind) Name() string { return k.name }

// Registry maps type names to kinds. Build it with NewRegistry; it is not
// changed afterwards except by Register, which must not run concurrently
// with lookups.
type Registry struct {
	kinds []Kind
	index map[string]int
}

// NewRegistry returns a registry of kinds. It panics on a kind without a
// name or a name registered twice: the kinds are a program's constant
// list.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{index: map[string]int{}}
	for _, k := range kinds {
		if err := r.Register(k); err != nil {
			panic(err)
		}
	}
	return r
}

// Register adds a kind; a name already registered is an error.
func (r *Registry) Register(k Kind) error {
	if k.name == "" || k.decode == nil || k.build == nil {
		return errors.New("register source kind: not made by NewKind")
	}
	if r.index == nil {
		r.index = map[string]int{}
	}
	if _, dup := r.index[k.name]; dup {
		return fmt.Errorf("register source kind %s: already registered", k.name)
	}
	r.index[k.name] = len(r.kinds)
	r.kinds = append(r.kinds, k)
	return nil
}

// Lookup returns the kind named name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	i, ok := r.index[name]
	if !ok {
		return Kind{}, false
	}
	return r.kinds[i], true
}

// Names are the registered type names, in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.kinds))
	for i, k := range r.kinds {
		out[i] = k.name
	}
	return out
}

// Config is one entry of sources: in floe.yaml: the source's type and,
// beside it, its settings in a section named after the type:
//
//	sources:
//	  - type: kafka
//	    kafka: {brokers: [...], ...}
//
// Decoding YAML keeps the sections as they are; Resolve decodes them with
// the kinds of a Registry, applies the defaults and validates; New then
// builds the source. A Config without a section gets the kind's defaults.
type Config struct {
	// Type names the kind.
	Type string
	// sections are the keys beside type, in order.
	sections []section
	// Set by Resolve.
	kind     *Kind
	settings any
}

type section struct {
	key  *yaml.Node
	node *yaml.Node
}

// UnmarshalYAML keeps the entry's type and sections for Resolve.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: sources: an entry must be a mapping with type: and its section", n.Line)
	}
	*c = Config{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return fmt.Errorf("line %d: sources: key %q is set twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if k.Value == "type" {
			if err := v.Decode(&c.Type); err != nil {
				return err
			}
			continue
		}
		c.sections = append(c.sections, section{k, v})
	}
	return nil
}

// Resolve decodes the entry's sections with the kinds of r, applies the
// defaults of its type's settings and validates them. key names the entry
// in errors ("sources[0]"): a missing or unknown type, a key that names no
// kind, a section that does not decode, a setting Validate rejects
// ("sources[0].kafka.brokers: ...").
func (c *Config) Resolve(r *Registry, key string) error {
	settings, err := c.decode(r, key)
	if err != nil {
		return err
	}
	known := "(" + strings.Join(r.Names(), ", ") + ")"
	if c.Type == "" {
		return fmt.Errorf("%s.type: required %s", key, known)
	}
	k, ok := r.Lookup(c.Type)
	if !ok {
		return fmt.Errorf("%s.type: %q is not a known source type %s", key, c.Type, known)
	}
	if settings == nil {
		var err error
		if settings, err = k.decode(nil); err != nil {
			return err
		}
	}
	if err := k.validate(settings); err != nil {
		return fmt.Errorf("%s.%w", key, err)
	}
	c.kind, c.settings = &k, settings
	return nil
}

// Decode decodes the entry's sections with the kinds of r without
// applying defaults or validating: a key that names no kind, an unknown
// key or a value of the wrong type in any section. A program checks with
// it the entries it does not run (a typo anywhere in a config is an
// error), and with Resolve those it runs. Errors about a key carry its
// node as a *yamlkeys.Error.
func (c *Config) Decode(r *Registry, key string) error {
	_, err := c.decode(r, key)
	return err
}

// decode decodes every section and returns the settings of the entry's
// type (nil when its section is absent).
func (c *Config) decode(r *Registry, key string) (any, error) {
	c.kind, c.settings = nil, nil
	for _, s := range c.sections {
		if _, ok := r.Lookup(s.key.Value); !ok {
			return nil, &yamlkeys.Error{Node: s.key, Section: key, Key: s.key.Value}
		}
	}
	// Every section decodes, as the config's other keys do: a misspelt key
	// in a section the type does not use still fails.
	var settings any
	for _, s := range c.sections {
		k, _ := r.Lookup(s.key.Value)
		v, err := k.decode(s.node)
		if err != nil {
			return nil, err
		}
		if s.key.Value == c.Type {
			settings = v
		}
	}
	return settings, nil
}

// Settings returns the resolved settings: a pointer to the kind's settings
// type (*kafka.Config for type kafka); nil before Resolve.
func (c *Config) Settings() any { return c.settings }

// New builds the source of a resolved entry.
func (c *Config) New(o Options) (Source, error) {
	if c.kind == nil {
		return nil, fmt.Errorf("new %s source: the config entry was not resolved", c.Type)
	}
	return c.kind.build(c.settings, o)
}
