package override

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// FileName is the overrides' file in a server's data directory.
const FileName = "overrides.json"

// maxFile bounds the file read back: MaxEntries entries of the longest.
const maxFile = 4 << 20

type fileDoc struct {
	Version   int     `json:"version"`
	Overrides []Entry `json:"overrides"`
}

// File keeps a book in a data directory: written whole (a few hundred
// bytes an entry), to a temporary file that is synced and renamed over
// the old one, the directory synced after, so that a crash (kill -9, a
// power cut) leaves the old file or the new one, never half of one.
type File struct {
	mu      sync.Mutex
	path    string
	written uint64 // the book version on disk
}

// NewFile is the overrides' file of the data directory dir.
func NewFile(dir string) *File { return &File{path: filepath.Join(dir, FileName)} }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load reads the file; none yet is no entries. A damaged file is an
// error that names it, and nothing is loaded from it.
func (f *File) Load() ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: over %d bytes", f.path, maxFile)
	}
	var d fileDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to start without overrides; peers send theirs)", f.path, err)
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, want 1", f.path, d.Version)
	}
	return d.Overrides, nil
}

// Save writes a book's entries as of version (Book.All) and returns once
// they are on disk. Saves are serialised, and one of a version older than
// the file's does nothing, so whatever the order of callers the file ends
// with the latest.
func (f *File) Save(es []Entry, version uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if version != 0 && version <= f.written {
		return nil
	}
	data, err := json.MarshalIndent(fileDoc{Version: 1, Overrides: es}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, FileName+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	f.written = max(f.written, version)
	return nil
}
