package healthdns

import "sync"

// registry holds, by key, what must outlive a CoreDNS reload (a listener,
// a store): a reload makes the new instance acquire before the old one
// releases, so only the last release of a key closes its value, and the
// port or lock never lapses in between.
type registry[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*registered[V]
}

type registered[V any] struct {
	v    V
	refs int
}

// acquire returns the value of k, made by open if there is none (an
// error of open leaves nothing behind), and counts a reference. use, if
// not nil, sees the value, and whether open made it, before anyone else
// can acquire or release it.
func (r *registry[K, V]) acquire(k K, open func() (V, error), use func(v V, opened bool)) (V, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[k]
	if !ok {
		v, err := open()
		if err != nil {
			return v, err
		}
		if r.m == nil {
			r.m = map[K]*registered[V]{}
		}
		e = &registered[V]{v: v}
		r.m[k] = e
	}
	e.refs++
	if use != nil {
		use(e.v, !ok)
	}
	return e.v, nil
}

// release drops a reference to k, if it is held, and calls done with its
// value and whether that was the last reference (then the value is gone
// from the registry, and done closes it).
func (r *registry[K, V]) release(k K, done func(v V, last bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[k]
	if !ok {
		return
	}
	e.refs--
	last := e.refs == 0
	if last {
		delete(r.m, k)
	}
	if done != nil {
		done(e.v, last)
	}
}

// len is how many keys are held.
func (r *registry[K, V]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
