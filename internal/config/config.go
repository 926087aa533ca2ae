// Package config is the settings registry of a server: every setting is defined once, with
// its section, name, type, default, description and whether it may change while the server
// runs. Values come from the defaults, then from a configuration file ([Registry.Load]),
// then from whoever starts the server ([Registry.Set]); mutable settings can also be changed
// live ([Registry.Update], the HTTP /updateConfig). The HTTP /config and /configs endpoints
// read the same registry.
//
// A setting is read through the typed handle [Define] returns; Get is one atomic load, so
// hot paths read settings freely.
//
// The file format is the ini-like one Apache Pegasus uses:
//
//	; a comment (so is a line starting with #)
//	[pegasus.server]
//	rocksdb_slow_query_threshold_ns = 50000000
//
// Every key must be a registered setting of that section; an unknown section or key is an
// error, so typos do not go unnoticed. The exceptions are sections whose keys are names the
// operator chooses: one registered with [DefineSection] (the clusters of [pegasus.clusters],
// for example) keeps its lines as they are, and so does every section of a family registered
// with [DefineSections], such as Pegasus's [block_service.<name>] ([Registry.Sections]).
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is the value type of a setting. Its String is Pegasus's name for it (FV_BOOL, ...).
type Type int

// Setting types.
const (
	Bool Type = iota
	Int32
	Uint32
	Int64
	Uint64
	Double
	String
)

func (t Type) String() string {
	switch t {
	case Bool:
		return "FV_BOOL"
	case Int32:
		return "FV_INT32"
	case Uint32:
		return "FV_UINT32"
	case Int64:
		return "FV_INT64"
	case Uint64:
		return "FV_UINT64"
	case Double:
		return "FV_DOUBLE"
	default:
		return "FV_STRING"
	}
}

// Errors of [Registry.Update] and [Registry.Set]; test with errors.Is.
var (
	ErrNotFound = errors.New("config: no such setting")
	// ErrNotMutable: the setting can only be set before the server starts.
	ErrNotMutable = errors.New("config: setting is not mutable")
	// ErrStringNotMutable: strings are never changed live (readers hold no lock).
	ErrStringNotMutable = errors.New("config: string settings cannot be changed live")
	// ErrInvalid: the value does not parse as the setting's type or is out of range.
	ErrInvalid = errors.New("config: invalid value")
	// ErrValidation: the setting's own validator refused the value.
	ErrValidation = errors.New("config: value validation failed")
)

// GroupError reports group validators (see [Registry.AddGroupValidator]) that refused an
// update. Failures maps validator names to their messages, in Names order.
type GroupError struct {
	Names    []string
	Messages []string
}

func (e *GroupError) Error() string {
	var parts []string
	for i, n := range e.Names {
		p := fmt.Sprintf("group validator %q failed", n)
		if e.Messages[i] != "" {
			p += fmt.Sprintf(": %q", e.Messages[i])
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// Kind is the set of Go types a setting can have.
type Kind interface {
	bool | int32 | uint32 | int64 | uint64 | float64 | string
}

// Spec defines one setting.
type Spec[T Kind] struct {
	Section, Name, Description string
	Default                    T
	// Mutable settings can be changed while the server runs.
	Mutable bool
	// Validate, if set, refuses values (from the file, Set or Update) it returns an error for.
	Validate func(T) error
}

// Value is the handle of a setting. Get is safe for concurrent use with updates.
type Value[T Kind] struct {
	v        atomic.Pointer[T]
	name     string
	validate func(T) error
}

// Get returns the setting's current value.
func (v *Value[T]) Get() T { return *v.v.Load() }

// Name returns the setting's name.
func (v *Value[T]) Name() string { return v.name }

// set validates x and stores it (before the server starts, as [Registry.Set]).
func (v *Value[T]) set(x T) error {
	if err := v.validate(x); err != nil {
		return err
	}
	v.v.Store(&x)
	return nil
}

// setting is the type-erased side of a Value, what the registry works with.
type setting struct {
	name, section, desc string
	typ                 Type
	mutable             bool
	format              func() string
	// parse parses and validates a value, returning a function that stores it.
	parse func(string) (store func(), err error)
}

// Info describes a setting and its current value (rendered as Pegasus renders values).
type Info struct {
	Name, Section, Description string
	Type                       Type
	Mutable                    bool
	Value                      string
}

// Registry holds the settings of one server. Safe for concurrent use.
type Registry struct {
	mu       sync.Mutex // serializes changes
	settings map[string]*setting
	sections map[string]*Section
	groups   []group
	// families maps a prefix registered with DefineSections to the sections loaded under
	// it: section name without the prefix -> key -> raw value.
	families map[string]map[string]map[string]string
}

type group struct {
	name string
	fn   func() error
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{settings: map[string]*setting{}, sections: map[string]*Section{},
		families: map[string]map[string]map[string]string{}}
}

// DefineSections registers a family of sections whose keys are not settings: every section
// named prefix+"<name>" (prefix "block_service." takes [block_service.backup]) is kept by
// [Registry.Load] as raw key = value strings, for its owner to read with
// [Registry.Sections] and check itself. The prefix must end in "." and must not be a
// section of a setting (nor overlap another family); breaking that is a programming error
// and panics.
func DefineSections(r *Registry, prefix string) {
	if !strings.HasSuffix(prefix, ".") || len(prefix) < 2 {
		panic(fmt.Sprintf("config: section family %q must end in \".\"", prefix))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.families {
		if strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p) {
			panic(fmt.Sprintf("config: section family %q overlaps %q", prefix, p))
		}
	}
	for _, st := range r.settings {
		if strings.HasPrefix(st.section, prefix) {
			panic(fmt.Sprintf("config: section family %q holds setting %q", prefix, st.name))
		}
	}
	r.families[prefix] = map[string]map[string]string{}
}

// Sections returns the sections of the family prefix (see [DefineSections]) read so far:
// section name without the prefix -> key -> value, values trimmed as settings are. The maps
// are the caller's. An undefined family has none.
func (r *Registry) Sections(prefix string) map[string]map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]string{}
	for name, keys := range r.families[prefix] {
		out[name] = maps.Clone(keys)
	}
	return out
}

// familyLocked returns the family prefix that section belongs to, if any.
func (r *Registry) familyLocked(section string) (string, bool) {
	for p := range r.families {
		if strings.HasPrefix(section, p) {
			return p, true
		}
	}
	return "", false
}

// Section is a section of the configuration file whose keys are not settings but names of
// the operator's choosing, each with a raw string value: "[pegasus.clusters]" maps cluster
// names to meta server lists, for example. Its methods are safe for concurrent use.
type Section struct {
	name, desc string
	mu         sync.Mutex
	kv         map[string]string
}

// DefineSection registers the raw section name: [Registry.Load] keeps every key = value
// line of it. Defining a section twice, or one whose name is a setting's, is a programming
// error and panics.
func DefineSection(r *Registry, name, description string) *Section {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.sections[name]; dup {
		panic(fmt.Sprintf("config: section %q defined twice", name))
	}
	s := &Section{name: name, desc: description, kv: map[string]string{}}
	r.sections[name] = s
	return s
}

// Name returns the section's name.
func (s *Section) Name() string { return s.name }

// Description returns the section's description.
func (s *Section) Description() string { return s.desc }

// Get returns the section's keys and values, in a new map.
func (s *Section) Get() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.kv)
}

// Set sets one key (before the server starts, as [Registry.Set] does for settings).
func (s *Section) Set(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[key] = value
}

// Define registers a setting with its default value and returns its handle. Names are
// unique across sections (settings are looked up by name alone); defining a name twice is a
// programming error and panics, as does a default its own validator refuses.
func Define[T Kind](r *Registry, s Spec[T]) *Value[T] {
	v := &Value[T]{name: s.Name, validate: func(x T) error {
		if s.Validate == nil {
			return nil
		}
		if err := s.Validate(x); err != nil {
			return fmt.Errorf("%w: %v", ErrValidation, err)
		}
		return nil
	}}
	def := s.Default
	v.v.Store(&def)
	st := &setting{name: s.Name, section: s.Section, desc: s.Description, mutable: s.Mutable}
	st.typ = typeOf(def)
	st.format = func() string { return formatValue(any(v.Get())) }
	st.parse = func(raw string) (func(), error) {
		x, err := parseValue[T](raw)
		if err != nil {
			return nil, err
		}
		if err := v.validate(x); err != nil {
			return nil, err
		}
		return func() { v.v.Store(&x) }, nil
	}
	if s.Validate != nil {
		if err := s.Validate(def); err != nil {
			panic(fmt.Sprintf("config: default of %s refused by its validator: %v", s.Name, err))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.settings[s.Name]; dup {
		panic(fmt.Sprintf("config: setting %q defined twice", s.Name))
	}
	if prefix, raw := r.familyLocked(s.Section); raw {
		panic(fmt.Sprintf("config: setting %q in section family %q", s.Name, prefix))
	}
	r.settings[s.Name] = st
	return v
}

func typeOf(x any) Type {
	switch x.(type) {
	case bool:
		return Bool
	case int32:
		return Int32
	case uint32:
		return Uint32
	case int64:
		return Int64
	case uint64:
		return Uint64
	case float64:
		return Double
	default:
		return String
	}
}

// FormatDouble renders a double as Pegasus does: two decimals, and "0.00" for |x| < 1e-6.
func FormatDouble(x float64) string {
	if math.Abs(x) < 1e-6 {
		return "0.00"
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func formatValue(x any) string {
	switch v := x.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return FormatDouble(v)
	default:
		return x.(string)
	}
}

// parseValue parses raw as T. Integers take C's base-0 forms (0x10, 010); unsigned types
// refuse negative values; bools are true/false in any case; doubles must be finite.
func parseValue[T Kind](raw string) (T, error) {
	var zero T
	s := strings.TrimSpace(raw)
	bad := fmt.Errorf("%w: %s", ErrInvalid, raw)
	var out any
	switch any(zero).(type) {
	case bool:
		switch strings.ToLower(s) {
		case "true":
			out = true
		case "false":
			out = false
		default:
			return zero, bad
		}
	case int32:
		n, err := strconv.ParseInt(cInt(s), 0, 32)
		if err != nil {
			return zero, bad
		}
		out = int32(n)
	case int64:
		n, err := strconv.ParseInt(cInt(s), 0, 64)
		if err != nil {
			return zero, bad
		}
		out = n
	case uint32:
		n, err := strconv.ParseUint(cInt(s), 0, 32)
		if err != nil {
			return zero, bad
		}
		out = uint32(n)
	case uint64:
		n, err := strconv.ParseUint(cInt(s), 0, 64)
		if err != nil {
			return zero, bad
		}
		out = n
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return zero, bad
		}
		out = f
	default:
		out = raw
	}
	return out.(T), nil
}

// cInt turns C's octal spelling "010" into Go's "0o10" (Go's base 0 reads a leading 0 as
// octal too, but also accepts "_" separators and "0b", which C does not: refuse those).
func cInt(s string) string {
	if strings.ContainsAny(s, "_") || strings.HasPrefix(strings.TrimLeft(s, "+-"), "0b") ||
		strings.HasPrefix(strings.TrimLeft(s, "+-"), "0o") {
		return "invalid"
	}
	return s
}

// Lookup describes the named setting.
func (r *Registry) Lookup(name string) (Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.settings[name]
	if !ok {
		return Info{}, false
	}
	return st.info(), true
}

func (st *setting) info() Info {
	return Info{Name: st.name, Section: st.section, Description: st.desc, Type: st.typ, Mutable: st.mutable, Value: st.format()}
}

// All describes every setting, sorted by name.
func (r *Registry) All() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.settings))
	for _, st := range r.settings {
		out = append(out, st.info())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AddGroupValidator adds a check of several settings together, run after every live
// update; when it fails the update is undone.
func (r *Registry) AddGroupValidator(name string, fn func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, group{name, fn})
}

// Update changes a mutable setting while the server runs. The checks come in Pegasus's
// order: unknown name ([ErrNotFound]), not mutable ([ErrNotMutable]), a string
// ([ErrStringNotMutable]), unparsable ([ErrInvalid]), refused by the setting's validator
// ([ErrValidation]), refused by a group validator (*[GroupError], the old value is
// restored).
func (r *Registry) Update(name, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.settings[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if !st.mutable {
		return fmt.Errorf("%w: %s", ErrNotMutable, name)
	}
	if st.typ == String {
		return fmt.Errorf("%w: %s", ErrStringNotMutable, name)
	}
	store, err := st.parse(value)
	if err != nil {
		return err
	}
	old := st.format()
	store()
	var ge GroupError
	for _, g := range r.groups {
		if err := g.fn(); err != nil {
			ge.Names = append(ge.Names, g.name)
			ge.Messages = append(ge.Messages, err.Error())
		}
	}
	if len(ge.Names) > 0 {
		if restore, err := st.parse(old); err == nil {
			restore()
		}
		return &ge
	}
	return nil
}

// Set sets a setting before the server starts, mutable or not.
func (r *Registry) Set(name, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.settings[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	store, err := st.parse(value)
	if err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	store()
	return nil
}

// Has reports whether name is a registered setting.
func (r *Registry) Has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.settings[name]
	return ok
}

// LoadFile reads settings from a configuration file (see the package doc for its format).
func (r *Registry) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return r.Load(f, path)
}

// Load reads settings in the configuration file format from rd; name labels errors. Every
// key must be a setting registered in that section, except in the sections of a family
// registered with [DefineSections], whose keys are kept as they are (a key given twice keeps
// its last value, as a setting does). It returns the first error; settings read before it
// keep their new values.
func (r *Registry) Load(rd io.Reader, name string) error {
	sc := bufio.NewScanner(rd)
	section := ""
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == ';' || text[0] == '#' {
			continue
		}
		if text[0] == '[' {
			end := strings.IndexByte(text, ']')
			if end < 0 || strings.TrimSpace(text[end+1:]) != "" {
				return fmt.Errorf("config: %s:%d: malformed section header %q", name, line, text)
			}
			section = strings.TrimSpace(text[1:end])
			r.mu.Lock()
			prefix, raw := r.familyLocked(section)
			if raw && len(section) > len(prefix) {
				fam := r.families[prefix]
				if fam[section[len(prefix):]] == nil {
					fam[section[len(prefix):]] = map[string]string{}
				}
			}
			r.mu.Unlock()
			if raw && len(section) == len(prefix) {
				return fmt.Errorf("config: %s:%d: section [%s] needs a name after %q", name, line, section, prefix)
			}
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("config: %s:%d: want key = value, got %q", name, line, text)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		r.mu.Lock()
		if prefix, raw := r.familyLocked(section); raw {
			if k == "" {
				r.mu.Unlock()
				return fmt.Errorf("config: %s:%d: empty key in [%s]", name, line, section)
			}
			r.families[prefix][section[len(prefix):]][k] = v
			r.mu.Unlock()
			continue
		}
		raw := r.sections[section]
		st, known := r.settings[k]
		r.mu.Unlock()
		if raw != nil {
			if k == "" {
				return fmt.Errorf("config: %s:%d: empty key in [%s]", name, line, section)
			}
			raw.Set(k, v)
			continue
		}
		if !known {
			return fmt.Errorf("config: %s:%d: unknown setting %q in [%s]", name, line, k, section)
		}
		if st.section != section {
			return fmt.Errorf("config: %s:%d: setting %q belongs in [%s], not [%s]", name, line, k, st.section, section)
		}
		if err := r.Set(k, v); err != nil {
			return fmt.Errorf("config: %s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	return nil
}
