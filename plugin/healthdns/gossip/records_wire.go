package gossip

import (
	"errors"
	"fmt"
	"slices"

	"github.com/healthdns/healthdns/plugin/healthdns/records"
)

// Wire format of owner record Sets (package records), kept apart from
// observations: they have other writers (the owners, through the
// webhook), other rates (an ExternalDNS sync, not a probe round) and other
// sizes. In the notation of wire.go, plus fixed 8-byte big-endian digests
// (dg):
//
//	record page  (5): owner str, epoch uv, seq uv, digest dg, page uv,
//	                  pages uv, chunk (uv length, bytes)
//	states       (6): push/pull on join only: n uv (1 or 2), n × part (uv
//	                  length, bytes); a part is a whole state (4) or record
//	                  state (7) message with its own header
//	record state (7): push/pull on join, or direct: sender str, n uv, n ×
//	                  (owner str, epoch uv, seq uv, body (uv length, bytes))
//
//	body:     n uv, n × endpoint, in key order (records.Set.Endpoints)
//	endpoint: name str, type byte (1 A, 2 AAAA, 3 CNAME, 4 TXT), set
//	          identifier str, ttl uv, n uv, n × target str, n uv, n ×
//	          (label key str, value str) in key order, n uv, n × (property
//	          name str, value str)
//
// A Set is sent whole under its version (records.Set says why): as pages
// of its body cut to fit one gossip message each, by broadcast, when it
// fits a few; as a record state sent directly to every member when it is
// larger; and whole in push/pull on join. After join, push/pull carries
// only the Sets' versions (in the digest, wire.go), and a node sends a
// peer, directly, the Sets it lacks. The digest (records.Set.Digest) tells
// apart two Sets of one version, so pages of the two are never mixed, and
// checks the body once assembled. A node with no Sets sends its push/pull
// state on join as a bare state message (4).
const (
	msgRecordPage  byte = 5
	msgStates      byte = 6
	msgRecordState byte = 7

	// maxSetBody bounds a Set's body: records.Set.Size bounds its encoding.
	maxSetBody = records.MaxSetSize
	// maxRecordPages bounds the pages of one Set.
	maxRecordPages = 4096
	// maxRecordState is the share of a push/pull state that Sets may take;
	// what does not fit goes in a later exchange (see recordState.full).
	maxRecordState = 8 << 20
	// maxAssemblies bounds the Sets being assembled from pages at once.
	maxAssemblies = 1024

	minEndpoint = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1
	minOwnerSet = 2 + 1 + 1 + 1
)

var recordTypes = []string{"", records.TypeA, records.TypeAAAA, records.TypeCNAME, records.TypeTXT}

type recordPage struct {
	Owner   string
	Version records.Version
	Digest  uint64
	Page    int
	Pages   int
	Chunk   []byte
}

type recordStateMsg struct {
	Sender string
	Sets   []records.Set
}

func appendDigest(b []byte, d uint64) []byte { return appendID(b, TargetID(d)) }

// appendSetBody encodes a Set's endpoints.
func appendSetBody(b []byte, eps []records.Endpoint) []byte {
	b = appendUvarint(b, uint64(len(eps)))
	for _, e := range eps {
		b = appendString(b, e.DNSName)
		b = append(b, byte(slices.Index(recordTypes, e.RecordType)))
		b = appendString(b, e.SetIdentifier)
		b = appendUvarint(b, uint64(e.RecordTTL))
		b = appendUvarint(b, uint64(len(e.Targets)))
		for _, t := range e.Targets {
			b = appendString(b, t)
		}
		keys := make([]string, 0, len(e.Labels))
		for k := range e.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, e.Labels[k])
		}
		b = appendUvarint(b, uint64(len(e.ProviderSpecific)))
		for _, p := range e.ProviderSpecific {
			b = appendString(b, p.Name)
			b = appendString(b, p.Value)
		}
	}
	return b
}

func (m *recordPage) encode() []byte {
	b := make([]byte, 0, 48+len(m.Owner)+len(m.Chunk))
	b = appendHeader(b, msgRecordPage)
	b = appendString(b, m.Owner)
	b = appendUvarint(b, m.Version.Epoch)
	b = appendUvarint(b, m.Version.Seq)
	b = appendDigest(b, m.Digest)
	b = appendUvarint(b, uint64(m.Page))
	b = appendUvarint(b, uint64(m.Pages))
	b = appendUvarint(b, uint64(len(m.Chunk)))
	return append(b, m.Chunk...)
}

func (m *recordStateMsg) encode() []byte {
	b := appendHeader(nil, msgRecordState)
	b = appendString(b, m.Sender)
	b = appendUvarint(b, uint64(len(m.Sets)))
	for _, s := range m.Sets {
		b = appendString(b, s.Owner)
		b = appendUvarint(b, s.Version.Epoch)
		b = appendUvarint(b, s.Version.Seq)
		body := appendSetBody(nil, s.Endpoints)
		b = appendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	return b
}

// encodeRecordStates encodes sets as record states of at most budget
// bytes of Sets each.
func encodeRecordStates(sender string, sets []records.Set, budget int) [][]byte {
	var out [][]byte
	m := &recordStateMsg{Sender: sender}
	used := 0
	for _, s := range sets {
		size := s.Size()
		if used+size > budget && len(m.Sets) > 0 {
			out = append(out, m.encode())
			m, used = &recordStateMsg{Sender: sender}, 0
		}
		m.Sets = append(m.Sets, s)
		used += size
	}
	if len(m.Sets) > 0 {
		out = append(out, m.encode())
	}
	return out
}

// encodeStates wraps push/pull parts in the states envelope.
func encodeStates(parts ...[]byte) []byte {
	b := appendHeader(nil, msgStates)
	b = appendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		b = appendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Decoding.

func (d *decoder) owner() string {
	s := d.string(records.MaxOwnerLen, "owner length")
	if d.err == nil {
		if err := records.CheckOwner(s); err != nil {
			d.fail(err)
		}
	}
	return s
}

func (d *decoder) version() records.Version {
	v := records.Version{Epoch: d.uvarint(), Seq: d.uvarint()}
	if d.err == nil && v.IsZero() {
		d.fail(errors.New("record set with version 0.0"))
	}
	return v
}

func (d *decoder) digest() uint64 { return uint64(d.id()) }

// decodeSetBody decodes a Set's body and checks the Set.
func decodeSetBody(owner string, v records.Version, body []byte) (records.Set, error) {
	d := &decoder{b: body}
	s := records.Set{Owner: owner, Version: v}
	n := d.count(minEndpoint, "endpoints")
	if n > records.MaxEndpoints {
		return records.Set{}, fmt.Errorf("%d endpoints over the limit %d", n, records.MaxEndpoints)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var e records.Endpoint
		e.DNSName = d.string(records.MaxNameLen, "name length")
		t := d.byte()
		if int(t) >= len(recordTypes) || t == 0 {
			d.fail(fmt.Errorf("bad record type %d", t))
			break
		}
		e.RecordType = recordTypes[t]
		e.SetIdentifier = d.string(records.MaxSetIDLen, "set identifier length")
		e.RecordTTL = int64(d.bounded(records.MaxTTL, "ttl"))
		k := int(d.bounded(records.MaxTargets, "targets"))
		for j := 0; j < k && d.err == nil; j++ {
			e.Targets = append(e.Targets, d.string(records.MaxTXTLen, "target length"))
		}
		k = int(d.bounded(records.MaxLabels, "labels"))
		for j := 0; j < k && d.err == nil; j++ {
			if e.Labels == nil {
				e.Labels = make(map[string]string, k)
			}
			key := d.string(records.MaxLabelKeyLen, "label key length")
			if _, dup := e.Labels[key]; dup && d.err == nil {
				d.fail(fmt.Errorf("label %q twice", key))
			}
			e.Labels[key] = d.string(records.MaxLabelValLen, "label length")
		}
		k = int(d.bounded(records.MaxProperties, "properties"))
		for j := 0; j < k && d.err == nil; j++ {
			e.ProviderSpecific = append(e.ProviderSpecific, records.Property{
				Name: d.string(records.MaxPropNameLen, "property name length"), Value: d.string(records.MaxPropValLen, "property length")})
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	if err := d.finish(); err != nil {
		return records.Set{}, err
	}
	// Canonical, in key order, one per key, within the limits: so that
	// decoding and encoding again gives the same bytes, and the digest is
	// the sender's.
	if err := s.Validate(); err != nil {
		return records.Set{}, err
	}
	return s, nil
}

func decodeRecordPage(d *decoder) (*recordPage, error) {
	m := &recordPage{Owner: d.owner(), Version: d.version(), Digest: d.digest()}
	m.Page = int(d.bounded(maxRecordPages-1, "page"))
	m.Pages = int(d.bounded(maxRecordPages, "pages"))
	if d.err == nil && m.Page >= m.Pages {
		d.fail(fmt.Errorf("page %d of %d", m.Page, m.Pages))
	}
	m.Chunk = d.bytes(maxBroadcast, "chunk length")
	if d.err == nil && len(m.Chunk) == 0 {
		d.fail(errors.New("empty record page"))
	}
	if d.err == nil {
		m.Chunk = slices.Clone(m.Chunk)
	}
	return m, d.finish()
}

// decodeRecordState decodes a record state, from push/pull or a direct
// message.
func decodeRecordState(b []byte) (*recordStateMsg, error) {
	if len(b) > maxState {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if typ != msgRecordState {
		return nil, fmt.Errorf("record state of type %d, want %d", typ, msgRecordState)
	}
	return decodeRecordStateBody(d)
}

func decodeRecordStateBody(d *decoder) (*recordStateMsg, error) {
	m := &recordStateMsg{Sender: d.node()}
	n := d.count(minOwnerSet, "record sets")
	seen := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		owner, v := d.owner(), d.version()
		body := d.bytes(maxSetBody, "record set length")
		if d.err != nil {
			break
		}
		if seen[owner] {
			return nil, fmt.Errorf("owner %s twice", owner)
		}
		seen[owner] = true
		s, err := decodeSetBody(owner, v, body)
		if err != nil {
			return nil, fmt.Errorf("owner %s: %w", owner, err)
		}
		m.Sets = append(m.Sets, s)
	}
	return m, d.finish()
}

// decodeStates splits a states envelope into its parts.
func decodeStates(b []byte) ([][]byte, error) {
	if len(b) > maxState {
		return nil, errTooLarge
	}
	typ, d, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if typ != msgStates {
		return nil, fmt.Errorf("states of type %d, want %d", typ, msgStates)
	}
	n := int(d.bounded(2, "parts"))
	var parts [][]byte
	for i := 0; i < n && d.err == nil; i++ {
		p := d.bytes(maxState, "part length")
		if d.err == nil && (len(p) < 2 || (p[0] != msgState && p[0] != msgRecordState)) {
			d.fail(errors.New("a states part that is not a state or a record state"))
		}
		parts = append(parts, p)
	}
	return parts, d.finish()
}
