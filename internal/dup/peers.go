package dup

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/internal/config"
)

// Config sections, read by metas and replica servers alike (operations.md §1).
const (
	// ClustersSection maps cluster names to their meta servers: "c2 = ip:port,ip:port".
	ClustersSection = "pegasus.clusters"
	// GroupSection maps cluster names to duplication cluster ids: "c2 = 2".
	GroupSection = "duplication-group"
)

// MaxClusterID is the largest duplication cluster id: a value's timetag holds 7 bits of it.
const MaxClusterID = 127

// Peers is what a server knows of the clusters it may duplicate with: the meta servers of
// each ([pegasus.clusters]) and the duplication cluster id of each ([duplication-group]),
// its own cluster included in the latter. The zero value knows none. A Peers is not
// modified once made, so it may be shared.
type Peers struct {
	metas map[string][]string
	ids   map[string]uint8
}

// NewPeers checks and returns the peers of the two sections' raw contents (name → value).
// Meta lists must be ip:port lists; ids must be 1 to [MaxClusterID], unique, and the
// group's names unique (keys of a map are).
func NewPeers(clusters, group map[string]string) (Peers, error) {
	p := Peers{metas: map[string][]string{}, ids: map[string]uint8{}}
	var errs []error
	for name, raw := range clusters {
		metas := config.SplitList(raw)
		if len(metas) == 0 {
			errs = append(errs, fmt.Errorf("dup: [%s] %s: no meta servers", ClustersSection, name))
			continue
		}
		for _, m := range metas {
			if _, err := netip.ParseAddrPort(m); err != nil {
				errs = append(errs, fmt.Errorf("dup: [%s] %s: meta server %q is not ip:port", ClustersSection, name, m))
			}
		}
		p.metas[name] = metas
	}
	seen := map[uint8]string{}
	for _, name := range slices.Sorted(maps.Keys(group)) {
		n, err := strconv.Atoi(strings.TrimSpace(group[name]))
		if err != nil || n < 1 || n > MaxClusterID {
			errs = append(errs, fmt.Errorf("dup: [%s] %s = %q: want a cluster id from 1 to %d", GroupSection, name, group[name], MaxClusterID))
			continue
		}
		if other, dup := seen[uint8(n)]; dup {
			errs = append(errs, fmt.Errorf("dup: [%s] %s and %s have the same id %d", GroupSection, other, name, n))
			continue
		}
		seen[uint8(n)] = name
		p.ids[name] = uint8(n)
	}
	if err := errors.Join(errs...); err != nil {
		return Peers{}, err
	}
	return p, nil
}

// Metas returns the meta servers of cluster name, in a new slice, and whether it is listed.
func (p Peers) Metas(name string) ([]string, bool) {
	m, ok := p.metas[name]
	return slices.Clone(m), ok
}

// ID returns the duplication cluster id of cluster name and whether it has one.
func (p Peers) ID(name string) (uint8, bool) {
	id, ok := p.ids[name]
	return id, ok
}

// HasID reports whether id is the duplication cluster id of some cluster.
func (p Peers) HasID(id uint8) bool {
	for _, v := range p.ids {
		if v == id {
			return true
		}
	}
	return false
}

// Clusters returns the names of the listed clusters, sorted.
func (p Peers) Clusters() []string { return slices.Sorted(maps.Keys(p.metas)) }
