package blockservice

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gopegasus/pegasus/internal/config"
)

// SectionPrefix is the prefix of the configuration sections that define block services:
// [block_service.<name>], as in Pegasus.
const SectionPrefix = "block_service."

// TypeHDFS is Pegasus's HDFS provider type, which [Open] refuses with an
// [UnsupportedTypeError].
const TypeHDFS = "hdfs_service"

// DefineConfig registers the [block_service.<name>] sections in r, so that a configuration
// file may hold them (see [config.DefineSections]); [FromConfig] then opens them. Call it
// once per registry, before loading a file.
func DefineConfig(r *config.Registry) { config.DefineSections(r, SectionPrefix) }

// Open opens the block service the section [block_service.<name>] describes: its key
// "type" picks the provider (local_service or s3), "args" and the provider's other keys
// configure it (see the package doc). Open does no I/O beyond reading the files and
// environment variables the section names; a missing root or bucket shows at the first
// call. An unknown key or a bad value is an error wrapping [ErrInvalid]; a type other than
// local_service and s3 is an [UnsupportedTypeError].
func Open(name string, section map[string]string) (Service, error) {
	var (
		p   provider
		err error
	)
	t := section["type"]
	switch t {
	case TypeLocal:
		p, err = newLocal(section)
	case TypeS3:
		p, err = newS3(section)
	case "":
		err = fmt.Errorf("%w: no type", ErrInvalid)
	default:
		return nil, &UnsupportedTypeError{Type: t}
	}
	if err != nil {
		return nil, fmt.Errorf("blockservice: [%s%s]: %w", SectionPrefix, name, err)
	}
	return &service{label: fmt.Sprintf("%s %q", t, name), p: p}, nil
}

// checkKeys refuses a section with keys other than known.
func checkKeys(section map[string]string, known ...string) error {
	var unknown []string
	for k := range section {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%w: unknown keys %s (known: %s)", ErrInvalid,
			strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return nil
}

// Providers are the block services of a server's configuration, by section name: what an
// RPC's backup_provider_type or file_provider_type names. They do not change once made, so
// they are safe for concurrent use.
type Providers struct {
	services map[string]Service
	// refused holds the sections whose type is not built (hdfs_service), so that using
	// them answers why.
	refused map[string]error
}

// FromConfig opens every [block_service.<name>] section loaded into r (registered there by
// [DefineConfig]). A malformed section is an error; a section of an unsupported type (a
// Pegasus configuration's hdfs_service) is not, but [Providers.Get] answers its
// [UnsupportedTypeError], so a server keeps starting with a configuration taken from
// Pegasus and a request naming that provider is told why it fails.
func FromConfig(r *config.Registry) (*Providers, error) {
	return NewProviders(r.Sections(SectionPrefix))
}

// NewProviders opens the given sections (section name -> key -> value) as [FromConfig] does.
func NewProviders(sections map[string]map[string]string) (*Providers, error) {
	p := &Providers{services: map[string]Service{}, refused: map[string]error{}}
	for _, name := range slices.Sorted(maps.Keys(sections)) {
		s, err := Open(name, sections[name])
		if ue := (*UnsupportedTypeError)(nil); errors.As(err, &ue) {
			p.refused[name] = err
			continue
		}
		if err != nil {
			return nil, err
		}
		p.services[name] = s
	}
	return p, nil
}

// Get returns the block service named name: [ErrUnknownProvider] if no section has that
// name, the [UnsupportedTypeError] if its type is not built.
func (p *Providers) Get(name string) (Service, error) {
	if s, ok := p.services[name]; ok {
		return s, nil
	}
	if err, ok := p.refused[name]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownProvider, name)
}

// Names returns the names of the usable block services, sorted.
func (p *Providers) Names() []string {
	return slices.Sorted(maps.Keys(p.services))
}
