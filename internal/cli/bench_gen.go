package cli

import (
	"math"
	"math/rand/v2"
)

// zipfian draws ranks in [0, n) with P(rank k) proportional to 1/(k+1)^theta, by the method
// of Gray et al., "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD 1994),
// which YCSB uses too. Rank 0 is the most popular. It is read-only after construction and
// safe for concurrent use with per-goroutine sources.
type zipfian struct {
	n                   uint64
	theta, alpha, zetan float64
	eta, half           float64
}

// zipfianTheta is YCSB's default skew.
const zipfianTheta = 0.99

func newZipfian(n uint64, theta float64) *zipfian {
	var zetan float64
	for i := uint64(1); i <= n; i++ {
		zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + 1/math.Pow(2, theta)
	return &zipfian{
		n: n, theta: theta, zetan: zetan,
		alpha: 1 / (1 - theta),
		eta:   (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan),
		half:  1 + math.Pow(0.5, theta),
	}
}

func (z *zipfian) rank(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < z.half:
		return 1
	}
	k := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(k, z.n-1)
}

// scramble spreads ranks over the key space (FNV-1a of the rank's bytes), so the popular
// records are not neighbours, as YCSB's scrambled zipfian does.
func scramble(k uint64) uint64 {
	h := uint64(14695981039346656037)
	for range 8 {
		h ^= k & 0xff
		h *= 1099511628211
		k >>= 8
	}
	return h
}

// keyChooser picks record ids for reads and updates.
type keyChooser interface {
	// next returns a record id below limit, the number of records inserted so far.
	next(r *rand.Rand, limit uint64) uint64
}

type uniformChooser struct{}

func (uniformChooser) next(r *rand.Rand, limit uint64) uint64 { return r.Uint64N(limit) }

// zipfChooser is the scrambled zipfian over the records loaded; records inserted during
// the run are chosen only by latestChooser.
type zipfChooser struct {
	z *zipfian
}

func (c zipfChooser) next(r *rand.Rand, limit uint64) uint64 {
	return scramble(c.z.rank(r)) % min(c.z.n, limit)
}

// latestChooser favours the records inserted last (workload D).
type latestChooser struct {
	z *zipfian
}

func (c latestChooser) next(r *rand.Rand, limit uint64) uint64 {
	k := c.z.rank(r)
	if k >= limit {
		k = limit - 1
	}
	return limit - 1 - k
}
