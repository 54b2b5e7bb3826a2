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

// Format 1 of the data directory, written by healthdns before format 2:
// the same file names, frames of payload length (4 bytes), CRC-32C (4
// bytes) and a payload of a kind byte and JSON (1 epoch {"epoch"}, 2 a
// whole Set {"owner", "version", "endpoints"}, 3 the snapshot {"format":
// 1, "epoch", "sets"}). Open reads it once and writes it again in format 2.

type legacySet struct {
	Owner     string     `json:"owner"`
	Version   Version    `json:"version"`
	Endpoints []Endpoint `json:"endpoints"`
}

type legacySnapshot struct {
	Format int         `json:"format"`
	Epoch  uint64      `json:"epoch"`
	Sets   []legacySet `json:"sets"`
}

// isLegacy reports whether a file holds format 1: it starts with a whole
// format 1 frame. (A damaged one reads as damaged format 2.)
func isLegacy(path string) (bool, []byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	if bytes.HasPrefix(b, frameMagic[:]) {
		return false, b, nil
	}
	_, _, ok := legacyFrame(b)
	return ok, b, nil
}

// readLegacy reads a format 1 directory; nil if the directory is not one.
func readLegacy(dir string) (*snapshotData, error) {
	snapOld, snapB, err := isLegacy(filepath.Join(dir, snapName))
	if err != nil {
		return nil, err
	}
	walOld, walB, err := isLegacy(filepath.Join(dir, walName))
	if err != nil {
		return nil, err
	}
	if !snapOld && !walOld {
		return nil, nil
	}
	if len(snapB) > 0 && !snapOld || len(walB) > 0 && !walOld {
		return nil, fmt.Errorf("%s mixes format 1 and format 2 files", dir)
	}
	sets := map[string]Set{}
	var epoch uint64
	take := func(ls legacySet) error {
		s := Set{Owner: ls.Owner, Head: Head{Version: ls.Version, Digest: Digest(ls.Endpoints)}, Endpoints: ls.Endpoints}
		if err := s.Validate(); err != nil {
			return err
		}
		if cur, ok := sets[s.Owner]; !ok || s.Head.After(cur.Head) {
			sets[s.Owner] = s
		}
		epoch = max(epoch, s.Head.Version.Epoch)
		return nil
	}
	if len(snapB) > 0 {
		p, n, ok := legacyFrame(snapB)
		if !ok || n != len(snapB) || p[0] != 3 {
			return nil, &CorruptError{Dir: dir, File: snapName, Offset: 0, Reason: "a damaged format 1 snapshot", Intact: -1}
		}
		var snap legacySnapshot
		if err := json.Unmarshal(p[1:], &snap); err != nil || snap.Format != 1 {
			return nil, &CorruptError{Dir: dir, File: snapName, Offset: 0, Reason: fmt.Sprintf("a format 1 snapshot that does not read: %v", err), Intact: -1}
		}
		epoch = snap.Epoch
		for _, ls := range snap.Sets {
			if err := take(ls); err != nil {
				return nil, &CorruptError{Dir: dir, File: snapName, Offset: 0, Reason: err.Error(), Intact: -1}
			}
		}
	}
	for off := 0; off < len(walB); {
		p, n, ok := legacyFrame(walB[off:])
		if !ok {
			if next := legacyIntactAfter(walB, off+1); next >= 0 {
				return nil, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: "a damaged format 1 entry", Intact: int64(next)}
			}
			break // a torn tail, never acknowledged
		}
		switch p[0] {
		case 1:
			var v struct {
				Epoch uint64 `json:"epoch"`
			}
			if err := json.Unmarshal(p[1:], &v); err != nil {
				return nil, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: err.Error(), Intact: -1}
			}
			epoch = max(epoch, v.Epoch)
		case 2:
			var ls legacySet
			err := json.Unmarshal(p[1:], &ls)
			if err == nil {
				err = take(ls)
			}
			if err != nil {
				return nil, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: err.Error(), Intact: -1}
			}
		default:
			return nil, &CorruptError{Dir: dir, File: walName, Offset: int64(off), Reason: fmt.Sprintf("format 1 entry of kind %d", p[0]), Intact: -1}
		}
		off += n
	}
	out := &snapshotData{epoch: epoch}
	for _, s := range sets {
		out.sets = append(out.sets, s)
	}
	return out, nil
}

func legacyFrame(b []byte) ([]byte, int, bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	size := binary.BigEndian.Uint32(b[0:])
	if size == 0 || size > maxFrame || uint64(len(b)-8) < uint64(size) {
		return nil, 0, false
	}
	p := b[8 : 8+int(size)]
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return p, 8 + int(size), true
}

// legacyIntactAfter returns the offset of the first whole format 1 frame
// at or after from, or -1.
func legacyIntactAfter(b []byte, from int) int {
	for i := from; i+8 < len(b); i++ {
		if _, _, ok := legacyFrame(b[i:]); ok {
			return i
		}
	}
	return -1
}
