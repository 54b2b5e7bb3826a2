package status

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxTXT is the longest character-string a TXT record can hold.
const MaxTXT = 255

// MatrixTXT is the health matrix of a name as TXT strings, the answer to
// `dig CH TXT NAME`. Every string is at most MaxTXT bytes, one fact per
// string, key=value words, so it greps well:
//
//	app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all outcome=healthy state=standby answer=198.51.100.10
//	voters partitioned=no heard=3 known=3 need=2 rule=servers pending=0 dns1=self dns2=heard witness:w1=heard
//	target 192.0.2.10 tier=1 weight=1 owner=- verdict=down since=2026-11-26T02:01:02Z (12s)
//	target 198.51.100.10 tier=1 weight=1 region=us owner=- verdict=up since=2026-11-26T02:01:02Z (12s)
//	192.0.2.10 observer=agent1 location=eu-west state=down age=0.4s
//	target 192.0.2.20 tier=1 weight=1 owner=east verdict=up override=drain since=...
//	192.0.2.20 override=drain who=alice until=2026-11-26T03:00:00Z_(in_58m0s) selector=owner=east reason=bad_deploy
//	192.0.2.10 reason at 02:01:02: agent1=down dns1=down by quorum majority
//	192.0.2.10 observer=agent1 location=eu-west state=down age=0.4s error=tcp 127.0.0.1:9001: dial tcp 127.0.0.1:9001: connect: connection refused
//
// The first string is the summary (an empty answer is "answer=-"). A
// summary too long for one string goes on in the next ones, word by word,
// and an answer list that does not fit continues in "answer+=ADDR,..."
// strings, so no address is lost. Then, when part is not nil, the
// server's standing among the voters (whether it may act), continued word
// by word like the summary. Then each target (with pending=STATE when a
// verdict change waits for a majority, and override=STATE when an
// operator's override is in force, followed by a string that says who,
// until when, by which selector and why), then its verdict's reason as
// recorded when the verdict changed (labelled "at HH:MM:SS:", UTC; absent
// if none), then one string per
// observer that reports on it, sorted by observer; a stale observation
// says state=stale, and one whose probe fails ends with error= and the
// failing check and its error as written, spaces and all (cut with "..."
// at the end of the string). Empty values are "-", spaces inside values "_". now is
// the reference for the verdict's age, usually Document.Time.
func MatrixTXT(n Name, part *Partition, now time.Time) []string {
	var p packer
	p.word(tok(n.Name))
	p.word("policy=" + tok(n.Policy))
	p.word("quorum=" + tok(n.Quorum))
	p.word("ttl=" + strconv.FormatUint(uint64(n.TTL), 10))
	p.word("fallback=" + tok(strings.Join(strings.Fields(n.Fallback), ",")))
	p.word("outcome=" + tok(n.Outcome))
	if n.State != "" {
		p.word("state=" + tok(n.State))
	}
	p.list("answer", n.answer())
	p.flush()
	if part != nil {
		yes := "no"
		if part.Partitioned {
			yes = "yes"
		}
		p.word("voters")
		p.word("partitioned=" + yes)
		p.word("heard=" + strconv.Itoa(part.VotersHeard))
		p.word("known=" + strconv.Itoa(part.VotersKnown))
		p.word("need=" + strconv.Itoa(part.VotersNeeded))
		p.word("rule=" + tok(part.VotersRule))
		p.word("pending=" + strconv.Itoa(part.Pending))
		for _, v := range part.Voters {
			name := tok(v.Name)
			if v.Role == RoleWitness {
				name = "witness:" + name
			}
			p.word(name + "=" + tok(v.State))
		}
		p.flush()
	}
	lines := p.lines
	for _, t := range n.Targets {
		since := "-"
		if !t.Since.IsZero() {
			since = stamp(t.Since) + " (" + ago(now, t.Since) + ")"
		}
		pending := ""
		if t.Pending != "" {
			pending = " pending=" + tok(t.Pending)
		}
		forced := ""
		if t.Override != nil {
			forced = " override=" + tok(t.Override.State)
		}
		region := ""
		if t.Region != "" {
			region = " region=" + tok(t.Region)
		}
		lines = append(lines, fit(fmt.Sprintf("target %s tier=%d weight=%d%s owner=%s verdict=%s%s%s since=%s",
			tok(t.Address), t.Tier, t.Weight, region, tok(t.Owner), orUnknown(t.Verdict), pending, forced, since)))
		if o := t.Override; o != nil {
			until := "-"
			if !o.Until.IsZero() {
				until = stamp(o.Until) + " (in " + ago(o.Until, now) + ")"
			}
			var q packer
			q.word(tok(t.Address))
			q.word("override=" + tok(o.State))
			q.word("who=" + tok(o.Who))
			q.word("until=" + tok(until))
			q.word("selector=" + tok(o.Selector))
			q.word("reason=" + tok(o.Reason))
			q.flush()
			lines = append(lines, q.lines...)
		}
		if t.Reason != "" {
			lines = append(lines, fit(tok(t.Address)+" reason "+oneLine.Replace(recorded(t.Reason, t.Since, now))))
		}
		obs := slices.Clone(t.Observations)
		slices.SortStableFunc(obs, func(a, b Observation) int { return strings.Compare(a.Observer, b.Observer) })
		for _, o := range obs {
			age := "-"
			if !o.LastHeard.IsZero() || o.AgeSeconds > 0 {
				age = seconds(o.AgeSeconds)
			}
			line := fmt.Sprintf("%s observer=%s location=%s state=%s age=%s",
				tok(t.Address), tok(o.Observer), tok(o.Location), o.shown(), age)
			if o.Error != "" {
				// Last on the string, as written: the rest of it is the error.
				line += " error=" + oneLine.Replace(o.Error)
			}
			lines = append(lines, fit(line))
		}
	}
	return lines
}

// packer joins words with spaces into strings of at most MaxTXT bytes,
// starting a new string when the next word does not fit.
type packer struct {
	lines []string
	line  string
}

// fits says whether w fits on the current string.
func (p *packer) fits(w string) bool {
	if p.line == "" {
		return len(w) <= MaxTXT
	}
	return len(p.line)+1+len(w) <= MaxTXT
}

func (p *packer) word(w string) {
	if !p.fits(w) {
		p.flush()
	}
	if p.line == "" {
		p.line = w
		return
	}
	p.line += " " + w
}

func (p *packer) flush() {
	if p.line != "" {
		p.lines = append(p.lines, fit(p.line))
		p.line = ""
	}
}

// list adds key=ITEM,ITEM,...; the items that do not fit continue in new
// strings as key+=ITEM,..., so none is lost.
func (p *packer) list(key string, items []string) {
	if len(items) == 0 {
		p.word(key + "=-")
		return
	}
	w := key + "=" + items[0]
	if !p.fits(w) {
		p.flush()
	}
	for _, it := range items[1:] {
		if next := w + "," + it; p.fits(next) {
			w = next
			continue
		}
		p.word(w)
		p.flush()
		w = key + "+=" + it
	}
	p.word(w)
}

// fit cuts s to MaxTXT bytes, on a character boundary, marking the cut.
func fit(s string) string {
	if len(s) <= MaxTXT {
		return s
	}
	cut := MaxTXT - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// tok makes a value one word: "-" when empty, spaces replaced by "_".
func tok(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, s)
}
