package healthdns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/healthdns/healthdns/plugin/healthdns/gossip"
)

// rosterFile is the roster's file in the data directory.
const rosterFile = "voters.json"

// rosterSaveEvery bounds how often the roster is written only because
// the voters' times moved; a voter added or dropped is written at once.
const rosterSaveEvery = time.Minute

// roster is the voters a server counts a majority of when the Corefile
// does not say how many there are (no servers option): itself, and every
// voter heard within forgetAfter that did not leave on purpose. With a
// data directory it is kept there, so that a restarted server still counts
// the voters it cannot hear (it may be restarting on the minority side of
// a split). Times are wall-clock UTC, so they survive a restart.
//
// roster is not safe for concurrent use; its member serialises it.
type roster struct {
	path        string // "" without a data directory
	self        string
	forgetAfter time.Duration
	voters      map[string]rosterVoter
	saved       time.Time // when last written
	dirty       bool      // the set changed since
}

type rosterVoter struct {
	Role string    `json:"role"`
	Seen time.Time `json:"seen"` // the latest news from it
}

// rosterDoc is the file's content.
type rosterDoc struct {
	Self   string                 `json:"self"`
	Voters map[string]rosterVoter `json:"voters"`
}

// loadRoster reads the roster of dir ("" for none). A missing file is an
// empty roster; a damaged one is reported and replaced, since the roster
// only ever errs towards counting fewer voters than exist.
func loadRoster(dir, self string, forgetAfter time.Duration) (*roster, error) {
	r := &roster{self: self, forgetAfter: forgetAfter, voters: map[string]rosterVoter{}}
	if dir == "" {
		return r, nil
	}
	r.path = filepath.Join(dir, rosterFile)
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("voters: %w", err)
	}
	var doc rosterDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return r, fmt.Errorf("voters: %s is damaged, starting afresh: %w", r.path, err)
	}
	for name, v := range doc.Voters {
		if name != "" && name != self {
			r.voters[name] = v
		}
	}
	return r, nil
}

// heard records news from a voter at t.
func (r *roster) heard(name string, role gossip.Role, t time.Time) {
	if name == r.self || t.IsZero() {
		return
	}
	t = t.UTC().Round(0)
	v, ok := r.voters[name]
	if !ok {
		r.dirty = true
	}
	if !ok || t.After(v.Seen) || v.Role != role.String() {
		r.voters[name] = rosterVoter{Role: role.String(), Seen: maxTime(t, v.Seen)}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// left drops a voter that left on purpose.
func (r *roster) left(name string) {
	if _, ok := r.voters[name]; ok {
		delete(r.voters, name)
		r.dirty = true
	}
}

// forget drops the voters not heard within forgetAfter and returns their
// names.
func (r *roster) forget(now time.Time) []string {
	var gone []string
	for name, v := range r.voters {
		if now.Sub(v.Seen) > r.forgetAfter {
			delete(r.voters, name)
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		r.dirty = true
	}
	slices.Sort(gone)
	return gone
}

// count is how many voters the roster holds, this server included.
func (r *roster) count() int { return 1 + len(r.voters) }

// names lists the voters other than this server, sorted.
func (r *roster) names() []string {
	out := make([]string, 0, len(r.voters))
	for name := range r.voters {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// due says whether the roster should be written now.
func (r *roster) due(now time.Time) bool {
	return r.path != "" && (r.dirty || now.Sub(r.saved) >= rosterSaveEvery)
}

// save writes the roster atomically: a temporary file, fsynced, renamed.
func (r *roster) save(now time.Time) error {
	r.saved, r.dirty = now, false
	b, err := json.MarshalIndent(rosterDoc{Self: r.self, Voters: r.voters}, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("voters: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, r.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("voters: write %s: %w", r.path, err)
	}
	return nil
}
