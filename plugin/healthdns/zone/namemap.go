package zone

import (
	"hash/maphash"
	"iter"
	"maps"
)

// nameShards: a change copies its name's shard. At 200,000 names, 1,024
// shards of 200 names cost a one-TXT-change rebuild 48 KB (71 KB with 256
// shards, whose copies were a storm's largest garbage after the records';
// 102 KB with 4,096, where copying the shard array costs more).
const nameShards = 1024

var nameSeed = maphash.MakeSeed()

// NameMap maps owner names to V in shards, so that a copy with a few
// names changed (Clone, then Set or Delete) copies their shards, not
// every name: one records' change among 100,000 names costs kilobytes,
// not the megabytes of a whole map's copy. A NameMap is written only
// before anyone else reads it, and never after it was cloned; a nil
// NameMap is empty.
type NameMap[V any] struct {
	shards [nameShards]map[string]V
	owned  [nameShards / 64]uint64 // the shards this map made and may write
	n      int
}

// NewNameMap returns an empty NameMap.
func NewNameMap[V any]() *NameMap[V] { return &NameMap[V]{} }

func shardOf(name string) int { return int(maphash.String(nameSeed, name) % nameShards) }

// Get returns the value of name, the zero V for none.
func (m *NameMap[V]) Get(name string) V {
	v, _ := m.Lookup(name)
	return v
}

// Lookup returns the value of name and whether it has one.
func (m *NameMap[V]) Lookup(name string) (V, bool) {
	if m == nil {
		var zero V
		return zero, false
	}
	v, ok := m.shards[shardOf(name)][name]
	return v, ok
}

// Len is the number of names.
func (m *NameMap[V]) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// All is every name and its value, in no order.
func (m *NameMap[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m == nil {
			return
		}
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// Clone returns a copy of m that shares its shards until it writes them.
func (m *NameMap[V]) Clone() *NameMap[V] {
	if m == nil {
		return NewNameMap[V]()
	}
	return &NameMap[V]{shards: m.shards, n: m.n}
}

// shard returns shard i to write, copying it first if m does not own it.
func (m *NameMap[V]) shard(i int) map[string]V {
	if m.owned[i/64]&(1<<(i%64)) == 0 {
		if m.shards[i] == nil {
			m.shards[i] = map[string]V{}
		} else {
			m.shards[i] = maps.Clone(m.shards[i])
		}
		m.owned[i/64] |= 1 << (i % 64)
	}
	return m.shards[i]
}

// Set sets the value of name.
func (m *NameMap[V]) Set(name string, v V) {
	s := m.shard(shardOf(name))
	if _, ok := s[name]; !ok {
		m.n++
	}
	s[name] = v
}

// Delete removes name.
func (m *NameMap[V]) Delete(name string) {
	i := shardOf(name)
	if _, ok := m.shards[i][name]; !ok {
		return
	}
	delete(m.shard(i), name)
	m.n--
}
