package override

import (
	"sync"
	"time"
)

// Book is a server's overrides: the entries it knows, merged last writer
// wins, safe for concurrent use. Its Version moves on every change, so a
// reader can tell cheaply whether to look again.
type Book struct {
	mu      sync.Mutex
	set     map[string]Entry
	version uint64
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{set: map[string]Entry{}} }

// Merge adds es and returns those that were news. Invalid entries are
// the caller's to refuse first (Validate).
func (b *Book) Merge(now time.Time, es ...Entry) []Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	set, news := Merge(b.set, es...)
	set = Forget(set, now)
	if len(news) > 0 || len(set) != len(b.set) {
		b.set = set
		b.version++
	}
	return news
}

// Apply adds es as Merge does, but only once persist has stored the
// book they make (its entries and version), and not at all if persist
// fails: an operator's write is acknowledged only once it is on disk.
// persist runs with the book locked.
func (b *Book) Apply(now time.Time, persist func(es []Entry, version uint64) error, es ...Entry) ([]Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	set, news := Merge(b.set, es...)
	if len(news) == 0 {
		return nil, nil
	}
	set = Forget(set, now)
	if persist != nil {
		if err := persist(Sorted(set), b.version+1); err != nil {
			return nil, err
		}
	}
	b.set = set
	b.version++
	return news, nil
}

// Get returns the entry of a selector key.
func (b *Book) Get(key string) (Entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.set[key]
	return e, ok
}

// All returns every entry, active and ended, by key, and the version
// they are of.
func (b *Book) All() ([]Entry, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Sorted(b.set), b.version
}

// Version moves on every change.
func (b *Book) Version() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.version
}

// Len is how many entries the book holds.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.set)
}
