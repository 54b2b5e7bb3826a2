package records

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// On disk, the data directory holds
//
//	LOCK          held (flock) while a Store has the directory open
//	wal           the write-ahead log: entries appended and fsynced one by one
//	snapshot      every owner's records and the epoch as of a compaction
//	snapshot.tmp  a snapshot being written; removed on open
//	wal.torn      the last torn tail cut off the log, kept for inspection
//
// Both files are sequences of frames:
//
//	magic    4 bytes "hdr2"
//	length   4 bytes, big endian: of the payload
//	crc      4 bytes: CRC-32C of the payload
//	hcrc     4 bytes: CRC-32C of the 12 bytes before
//	payload  a kind byte, then the entry (codec.go's encodings)
//	trailer  2 bytes 0xa5 0x5a, so that a frame never ends in zeros
//
// The log's entries:
//
//	1 epoch    epoch uv: a Store opened under this epoch
//	2 change   a change (codec.go): applied if it chains onto the owner's
//	           state, skipped if that state is already past it
//	3 install  owner str, head, n uv, n × endpoint: the owner's records
//	           whole, as a peer sent them, if they supersede the state
//
// The snapshot's: a header (10: format uv, epoch uv, owners uv), then for
// each owner an owner entry (11: owner str, head, n uv) followed by
// endpoint entries (12: n uv, n × endpoint) holding its n endpoints in key
// order, then an end entry (13: owners uv, endpoints uv).
//
// Replaying an entry twice changes nothing (a change applies only onto the
// state it was made from, an install only if it supersedes), which is what
// makes compaction safe: a crash between writing the snapshot and emptying
// the log replays entries the snapshot already holds.
//
// What a crash can leave is a torn tail: the last append cut short (kill
// -9 in the middle of a write), or, after a power cut, its last sectors
// never written (zeros). Only that is cut off, and it was never
// acknowledged, since acknowledging waits for the fsync. Any other damage
// (a bad checksum with more after it, a short snapshot, a change that does
// not chain) is corruption: Open refuses the directory with a
// CorruptError that names the file and offset, rather than drop what
// follows.
const (
	walName     = "wal"
	snapName    = "snapshot"
	snapTmpName = "snapshot.tmp"
	tornName    = "wal.torn"
	lockName    = "LOCK"

	frameHeader  = 16
	frameTrailer = 2
	maxFrame     = 64 << 20 // an install of MaxSetSize bytes of records fits
	sectorSize   = 512

	snapFormat = 2

	kindEpoch     = 1
	kindChange    = 2
	kindInstall   = 3
	kindSnapHead  = 10
	kindSnapOwner = 11
	kindSnapEps   = 12
	kindSnapEnd   = 13

	// snapChunk is the most endpoints of one snapshot entry.
	snapChunk = 1024
)

var (
	frameMagic  = [4]byte{'h', 'd', 'r', '2'}
	trailer     = [frameTrailer]byte{0xa5, 0x5a}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
	errNotFrame = errors.New("not a frame")
)

// ErrCorrupt is wrapped by the error of a store whose data directory is
// damaged in a way a crash cannot explain.
var ErrCorrupt = errors.New("records: data directory damaged")

// CorruptError says where a data directory is damaged and how to recover.
type CorruptError struct {
	Dir    string
	File   string // base name in Dir
	Offset int64
	Reason string
	// Intact is the offset of the first intact entry after the damage, -1
	// if none is found.
	Intact int64
}

func (e *CorruptError) Error() string {
	path := filepath.Join(e.Dir, e.File)
	after := ""
	if e.File == walName {
		after = ", with no intact entry after it"
		if e.Intact >= 0 {
			after = fmt.Sprintf(", with intact entries after it (from offset %d), so not a torn write", e.Intact)
		}
	}
	msg := fmt.Sprintf("%s is damaged at offset %d: %s%s; the store is not opened, so that no acknowledged record is dropped. "+
		"To recover: move %s aside (the server opens a new one within a minute, or start it again): peers send every owner's records, and ExternalDNS sends its own again on its next sync",
		path, e.Offset, e.Reason, after, e.Dir)
	if e.File == walName {
		msg += fmt.Sprintf("; or, to keep the changes before the damage and lose those after it, truncate the log to that offset (truncate -s %d %s)", e.Offset, path)
	}
	return msg
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// frame encodes one entry: kind and body.
func frame(kind byte, body []byte) []byte {
	b := make([]byte, frameHeader, frameHeader+1+len(body)+frameTrailer)
	b = append(b, kind)
	b = append(b, body...)
	b = append(b, trailer[:]...)
	finishFrame(b)
	return b
}

// finishFrame fills the header of a frame whose payload and trailer are
// in place.
func finishFrame(b []byte) {
	payload := b[frameHeader : len(b)-frameTrailer]
	copy(b[0:4], frameMagic[:])
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(payload, castagnoli))
	binary.BigEndian.PutUint32(b[12:], crc32.Checksum(b[:12], castagnoli))
}

// frameFault says why the bytes at an offset are not a whole frame.
type frameFault int

const (
	frameOK         frameFault = iota
	frameShort                 // the input ends inside the frame
	frameBadHeader             // magic or header checksum wrong
	frameBadPayload            // payload checksum wrong
	frameBadTrailer            // payload right, trailer wrong
)

func (f frameFault) String() string {
	return [...]string{"", "the file ends inside an entry", "a damaged entry header", "an entry with a bad checksum", "an entry with a damaged trailer"}[f]
}

// nextFrame reads the frame at the start of b: its payload, its length,
// and what is wrong with it, if anything. A frame with only its trailer
// damaged still returns its (checked) payload.
func nextFrame(b []byte) (payload []byte, n int, fault frameFault) {
	if len(b) < frameHeader {
		return nil, 0, frameShort
	}
	if !bytes.Equal(b[0:4], frameMagic[:]) || crc32.Checksum(b[:12], castagnoli) != binary.BigEndian.Uint32(b[12:]) {
		return nil, 0, frameBadHeader
	}
	size := int(binary.BigEndian.Uint32(b[4:]))
	if size == 0 || size > maxFrame {
		return nil, 0, frameBadHeader
	}
	n = frameHeader + size + frameTrailer
	if len(b) < n {
		return nil, 0, frameShort
	}
	payload = b[frameHeader : frameHeader+size]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return nil, n, frameBadPayload
	}
	if !bytes.Equal(b[n-frameTrailer:n], trailer[:]) {
		return payload, n, frameBadTrailer
	}
	return payload, n, frameOK
}

// findFrame returns the offset of the first whole frame in b at or after
// from, or -1.
func findFrame(b []byte, from int) int {
	for i := from; i+frameHeader <= len(b); i++ {
		j := bytes.Index(b[i:], frameMagic[:])
		if j < 0 {
			return -1
		}
		i += j
		if _, _, f := nextFrame(b[i:]); f == frameOK || f == frameBadTrailer {
			return i
		}
	}
	return -1
}

// tornAt reports whether the damage at off is a torn tail: what a crash
// in the middle of the last append leaves, and nothing else.
func tornAt(b []byte, off int, fault frameFault) bool {
	rest := b[off:]
	switch fault {
	case frameShort:
		if len(rest) >= frameHeader {
			return true // a whole header, checked, and the payload cut short
		}
		// A header cut short: a prefix of a header, or zeros.
		return bytes.HasPrefix(frameMagic[:], rest[:min(len(rest), 4)]) || zeroFrom(b, off)
	case frameBadHeader:
		return zeroFrom(b, off)
	case frameBadPayload:
		_, n, _ := nextFrame(rest)
		return off+n == len(b) && zeroFrom(b, off)
	}
	return false
}

// zeroFrom reports whether b ends in zeros from off or from a sector
// boundary after it: sectors of the last write that never reached the
// disk (a power cut).
func zeroFrom(b []byte, off int) bool {
	z := len(b) // after the last non-zero byte
	for z > off && b[z-1] == 0 {
		z--
	}
	if z == len(b) {
		return false
	}
	if z == off {
		return true
	}
	p := (z + sectorSize - 1) / sectorSize * sectorSize
	return p < len(b)
}

// logEntry is one decoded log entry and its offset.
type logEntry struct {
	off    int64
	kind   byte
	epoch  uint64
	change Change
	set    Set
}

// readLog decodes a log. It returns its entries, the length of the valid
// part (what follows is a torn tail to cut off), and the offsets of
// entries whose trailer only was damaged. Any other damage is a
// *CorruptError.
func readLog(dir string, b []byte) (entries []logEntry, good int, err error) {
	off := 0
	for off < len(b) {
		p, n, fault := nextFrame(b[off:])
		if fault != frameOK && fault != frameBadTrailer {
			if tornAt(b, off, fault) {
				return entries, off, nil
			}
			return nil, 0, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: fault.String(), Intact: int64(findFrame(b, off+1))}
		}
		e, derr := decodeLogEntry(p)
		if derr != nil {
			return nil, 0, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: derr.Error(), Intact: int64(findFrame(b, off+n))}
		}
		e.off = int64(off)
		entries = append(entries, e)
		off += n
	}
	return entries, off, nil
}

// decodeLogEntry decodes the payload of a log frame whose checksum was
// right. An error here is not a torn write but an entry this code cannot
// read.
func decodeLogEntry(p []byte) (logEntry, error) {
	e := logEntry{kind: p[0]}
	d := NewDecoder(p[1:])
	switch e.kind {
	case kindEpoch:
		e.epoch = d.Uvarint()
	case kindChange:
		e.change = d.Change()
	case kindInstall:
		e.set = decodeSetBody(d)
	default:
		return logEntry{}, fmt.Errorf("unknown entry kind %d", e.kind)
	}
	if d.Err() == nil && d.Len() > 0 {
		d.fail(errors.New("bytes after the entry"))
	}
	if d.Err() != nil {
		return logEntry{}, fmt.Errorf("entry of kind %d: %w", e.kind, d.Err())
	}
	return e, nil
}

// appendSetBody and decodeSetBody encode a whole owner: owner str, head,
// n uv, n × endpoint.
func appendSetBody(b []byte, s Set) []byte {
	b = appendString(b, s.Owner)
	b = AppendHead(b, s.Head)
	b = appendUvarint(b, uint64(len(s.Endpoints)))
	for _, e := range s.Endpoints {
		b = AppendEndpoint(b, e)
	}
	return b
}

func decodeSetBody(d *Decoder) Set {
	s := Set{Owner: d.Owner(), Head: d.Head()}
	n := d.Count(minEndpoint, "endpoints")
	if n > MaxEndpoints {
		d.fail(fmt.Errorf("%d endpoints, more than %d", n, MaxEndpoints))
	}
	if d.Err() == nil && n > 0 {
		s.Endpoints = make([]Endpoint, 0, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		s.Endpoints = append(s.Endpoints, d.Endpoint())
	}
	if d.Err() == nil {
		if err := s.Validate(); err != nil {
			d.fail(err)
		}
	}
	return s
}

// snapshotData is what a snapshot holds.
type snapshotData struct {
	epoch uint64
	sets  []Set
}

// readSnapshot reads the snapshot file; a missing one is empty. The file
// is renamed into place whole, so unlike the log it has no torn tail: any
// damage is corruption.
func readSnapshot(dir string) (snapshotData, int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, snapName))
	if errors.Is(err, os.ErrNotExist) {
		return snapshotData{}, 0, nil
	}
	if err != nil {
		return snapshotData{}, 0, err
	}
	var out snapshotData
	off := 0
	bad := func(why string) error {
		return &CorruptError{Dir: dir, File: snapName, Offset: int64(off), Reason: why, Intact: -1}
	}
	next := func() (*Decoder, byte, error) {
		if off >= len(b) {
			return nil, 0, bad("the snapshot ends before its end entry")
		}
		p, n, fault := nextFrame(b[off:])
		if fault != frameOK && fault != frameBadTrailer {
			return nil, 0, bad(fault.String())
		}
		off += n
		return NewDecoder(p[1:]), p[0], nil
	}
	d, kind, err := next()
	if err != nil {
		return snapshotData{}, 0, err
	}
	if kind != kindSnapHead {
		return snapshotData{}, 0, bad(fmt.Sprintf("the first entry has kind %d, not a snapshot header", kind))
	}
	if f := d.Uvarint(); d.Err() == nil && f != snapFormat {
		return snapshotData{}, 0, bad(fmt.Sprintf("snapshot format %d, this version reads %d", f, snapFormat))
	}
	out.epoch = d.Uvarint()
	owners := d.Bounded(1<<20, "owners")
	if d.Err() != nil {
		return snapshotData{}, 0, bad("snapshot header: " + d.Err().Error())
	}
	total := 0
	seen := map[string]bool{}
	for range owners {
		start := off
		d, kind, err := next()
		if err != nil {
			return snapshotData{}, 0, err
		}
		if kind != kindSnapOwner {
			off = start
			return snapshotData{}, 0, bad(fmt.Sprintf("entry of kind %d where an owner was due", kind))
		}
		s := Set{Owner: d.Owner(), Head: d.Head()}
		n := int(d.Bounded(MaxEndpoints, "endpoints"))
		if d.Err() != nil || seen[s.Owner] {
			off = start
			return snapshotData{}, 0, bad(fmt.Sprintf("owner entry: %v (or owner twice)", d.Err()))
		}
		seen[s.Owner] = true
		s.Endpoints = make([]Endpoint, 0, n)
		for len(s.Endpoints) < n {
			start := off
			d, kind, err := next()
			if err != nil {
				return snapshotData{}, 0, err
			}
			k := d.Count(minEndpoint, "endpoints")
			if kind != kindSnapEps || k == 0 || len(s.Endpoints)+k > n {
				off = start
				return snapshotData{}, 0, bad(fmt.Sprintf("entry of kind %d with %d endpoints where owner %s's endpoints were due", kind, k, s.Owner))
			}
			for i := 0; i < k && d.Err() == nil; i++ {
				s.Endpoints = append(s.Endpoints, d.Endpoint())
			}
			if d.Err() == nil && d.Len() > 0 {
				d.fail(errors.New("bytes after the endpoints"))
			}
			if d.Err() != nil {
				off = start
				return snapshotData{}, 0, bad(fmt.Sprintf("owner %s: %v", s.Owner, d.Err()))
			}
		}
		if err := s.Validate(); err != nil {
			off = start
			return snapshotData{}, 0, bad(err.Error())
		}
		total += n
		out.sets = append(out.sets, s)
	}
	d, kind, err = next()
	if err != nil {
		return snapshotData{}, 0, err
	}
	if o, n := d.Uvarint(), d.Uvarint(); kind != kindSnapEnd || d.Err() != nil || o != owners || n != uint64(total) {
		return snapshotData{}, 0, bad("a damaged end entry")
	}
	if off != len(b) {
		return snapshotData{}, 0, bad("bytes after the end entry")
	}
	return out, int64(len(b)), nil
}

// writeSnapshot writes st and epoch as a snapshot to w.
func writeSnapshot(w io.Writer, epoch uint64, st State) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	put := func(kind byte, body []byte) error {
		_, err := bw.Write(frame(kind, body))
		return err
	}
	owners := st.Owners()
	if err := put(kindSnapHead, appendUvarint(appendUvarint(appendUvarint(nil, snapFormat), epoch), uint64(len(owners)))); err != nil {
		return err
	}
	total := 0
	var body []byte
	for _, owner := range owners {
		o := st.owners[owner]
		body = appendString(body[:0], owner)
		body = AppendHead(body, o.head)
		body = appendUvarint(body, uint64(o.len()))
		if err := put(kindSnapOwner, body); err != nil {
			return err
		}
		var chunk []byte
		k := 0
		var err error
		flush := func() {
			if k > 0 && err == nil {
				err = put(kindSnapEps, append(appendUvarint(body[:0], uint64(k)), chunk...))
			}
			chunk, k = chunk[:0], 0
		}
		o.tree.Ascend(func(it item) bool {
			chunk = append(chunk, it.enc...)
			if k++; k == snapChunk || len(chunk) > 1<<20 {
				flush()
			}
			return err == nil
		})
		flush()
		if err != nil {
			return err
		}
		total += o.len()
	}
	if err := put(kindSnapEnd, appendUvarint(appendUvarint(nil, uint64(len(owners))), uint64(total))); err != nil {
		return err
	}
	return bw.Flush()
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
