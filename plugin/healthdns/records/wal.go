package records

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// On disk, the data directory holds
//
//	LOCK          held (flock) while a Store has the directory open
//	wal           the write-ahead log: entries appended and fsynced one by one
//	snapshot      every Set and the epoch as of a compaction, one entry
//	snapshot.tmp  a snapshot being written; removed on open
//
// An entry is a frame: payload length (4 bytes, big endian), CRC-32C of
// the payload (4 bytes), payload. The payload is a kind byte and JSON:
//
//	1 epoch     {"epoch": N}: a Store opened under epoch N
//	2 set       a Set (owner, version, endpoints): the owner's Set is now
//	            this one, if it supersedes the one before
//	3 snapshot  {"format": 1, "epoch": N, "sets": [...]}
//
// Replaying an entry twice changes nothing (a Set replaces another only
// if it supersedes it), which is what makes compaction safe: a crash
// between writing the snapshot and emptying the log replays entries the
// snapshot already holds.
const (
	walName      = "wal"
	snapName     = "snapshot"
	snapTmpName  = "snapshot.tmp"
	lockName     = "LOCK"
	frameHeader  = 8
	maxFrame     = 64 << 20 // one WAL entry; a Set is at most MaxSetSize, its JSON a few times that
	snapFormat   = 1
	kindEpoch    = 1
	kindSet      = 2
	kindSnapshot = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type epochEntry struct {
	Epoch uint64 `json:"epoch"`
}

type snapshotEntry struct {
	Format int    `json:"format"`
	Epoch  uint64 `json:"epoch"`
	Sets   []Set  `json:"sets"`
}

// frame encodes one entry.
func frame(kind byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(make([]byte, frameHeader))
	buf.WriteByte(kind)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	payload := b[frameHeader:]
	if len(payload) > maxFrame {
		return nil, fmt.Errorf("entry of %d bytes, over the limit %d", len(payload), maxFrame)
	}
	binary.BigEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
	return b, nil
}

// entry is one decoded log entry.
type entry struct {
	kind  byte
	epoch uint64 // kindEpoch, kindSnapshot
	set   Set    // kindSet
	sets  []Set  // kindSnapshot
}

// errTorn marks the end of the valid part of a log: a frame cut short or
// with a bad checksum, what a crash in the middle of an append leaves.
var errTorn = errors.New("torn entry")

// nextFrame reads the frame at the start of b and returns its payload and
// length. A frame that is cut short, has a bad length or a bad checksum
// is errTorn.
func nextFrame(b []byte) (payload []byte, n int, err error) {
	if len(b) < frameHeader {
		return nil, 0, errTorn
	}
	size := binary.BigEndian.Uint32(b[0:])
	if size == 0 || size > maxFrame || uint64(len(b)-frameHeader) < uint64(size) {
		return nil, 0, errTorn
	}
	payload = b[frameHeader : frameHeader+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, errTorn
	}
	return payload, frameHeader + int(size), nil
}

// decodeEntry decodes a payload whose checksum was right. An error here is
// not a torn write but an entry this code cannot read.
func decodeEntry(p []byte) (entry, error) {
	e := entry{kind: p[0]}
	body := p[1:]
	switch e.kind {
	case kindEpoch:
		var v epochEntry
		if err := json.Unmarshal(body, &v); err != nil {
			return entry{}, fmt.Errorf("epoch entry: %w", err)
		}
		e.epoch = v.Epoch
	case kindSet:
		if err := json.Unmarshal(body, &e.set); err != nil {
			return entry{}, fmt.Errorf("set entry: %w", err)
		}
		if err := e.set.Validate(); err != nil {
			return entry{}, fmt.Errorf("set entry: %w", err)
		}
	case kindSnapshot:
		var v snapshotEntry
		if err := json.Unmarshal(body, &v); err != nil {
			return entry{}, fmt.Errorf("snapshot: %w", err)
		}
		if v.Format != snapFormat {
			return entry{}, fmt.Errorf("snapshot format %d, want %d", v.Format, snapFormat)
		}
		seen := map[string]bool{}
		for _, s := range v.Sets {
			if err := s.Validate(); err != nil {
				return entry{}, fmt.Errorf("snapshot: %w", err)
			}
			if seen[s.Owner] {
				return entry{}, fmt.Errorf("snapshot: owner %s twice", s.Owner)
			}
			seen[s.Owner] = true
		}
		e.epoch, e.sets = v.Epoch, v.Sets
	default:
		return entry{}, fmt.Errorf("unknown entry kind %d", e.kind)
	}
	return e, nil
}

// readLog decodes the entries of a log and returns them with the length
// of its valid prefix; what follows it is a torn tail to cut off.
func readLog(b []byte) ([]entry, int, error) {
	var out []entry
	off := 0
	for off < len(b) {
		p, n, err := nextFrame(b[off:])
		if err != nil {
			break
		}
		e, err := decodeEntry(p)
		if err != nil {
			return nil, 0, fmt.Errorf("entry at offset %d: %w", off, err)
		}
		out = append(out, e)
		off += n
	}
	return out, off, nil
}

// readSnapshot reads the snapshot file; a missing one is empty.
func readSnapshot(dir string) (snapshotEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, snapName))
	if errors.Is(err, os.ErrNotExist) {
		return snapshotEntry{Format: snapFormat}, nil
	}
	if err != nil {
		return snapshotEntry{}, err
	}
	// The snapshot is renamed into place whole, so unlike the log it can
	// have no torn tail: any damage is corruption.
	p, n, err := nextFrame(b)
	if err != nil || n != len(b) {
		return snapshotEntry{}, fmt.Errorf("snapshot %s is damaged (bad length or checksum)", filepath.Join(dir, snapName))
	}
	e, err := decodeEntry(p)
	if err != nil {
		return snapshotEntry{}, err
	}
	if e.kind != kindSnapshot {
		return snapshotEntry{}, fmt.Errorf("snapshot holds an entry of kind %d", e.kind)
	}
	return snapshotEntry{Format: snapFormat, Epoch: e.epoch, Sets: e.sets}, nil
}

// writeFileSync writes a file whole and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory, so that a file created, renamed or removed
// in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
