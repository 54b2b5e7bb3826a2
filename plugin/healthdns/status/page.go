package status

import (
	_ "embed"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

// page is the HTML status page. html/template escapes everything that
// comes from the document, names and reasons included.
var page = template.Must(template.New("page").Parse(pageHTML))

// pageData is what the template shows, rendered from a Document.
type pageData struct {
	Doc  *Document
	Time string
	// Summary says what is wrong across the names, SummaryClass how bad.
	Summary, SummaryClass string
	Partition             *partitionView
	Members               []memberView
	Views                 []viewView
	Names                 []nameView
	Catalog               []catalogView
}

type partitionView struct {
	Class, Text string
}

type memberView struct {
	Member
	Class, Since string
}

type viewView struct {
	View
	Class, Heard string
}

type nameView struct {
	Name
	Answer   string
	PerQuery string // how a query's answer differs from Answer, if it does
	Shown    string // the state shown
	Meaning  string // the state in words
	Class    string // of the state
	Columns  []column
	Rows     []rowView
}

type rowView struct {
	Target
	// Reason is the verdict's reason labelled with when it was recorded.
	Reason string
	// Open says whether its history is open; Toggle is the page's URL
	// with it the other way, Anchor the element's id. The page has no
	// JavaScript, so what is open lives in the URL (?open=NAME/ADDR),
	// which the refresh keeps.
	Open           bool
	Toggle, Anchor string
	Answered       bool
	Class          string // of the verdict
	Checks         string
	Since          string
	Cells          []cell
	History        []changeView // newest first
	Forced         string       // the override's who, until and why
}

type cell struct {
	Class, Text, Title string
	// Error is why the observer's probe fails, shown under the state; for
	// an observation that is not down (one failed check within fall), in
	// grey as the last check's.
	Error, ErrClass string
}

type changeView struct {
	Change
	Time, Ago, FromClass, ToClass, UntilText string
}

type catalogView struct {
	CatalogEntry
	Class, Checks, Since, Checked string
}

// class is the CSS class of a state: up is green, down red, anything else
// (unknown, stale, no observation) grey.
func class(state string) string {
	switch state {
	case StateUp, NameHealthy, "alive":
		return "up"
	case StateDown, NameNone, NameFallback, "dead":
		return "down"
	case NameStandby, "suspect":
		return "warn"
	case NameDegraded:
		return "degraded"
	}
	return "unknown"
}

func when(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return stamp(t) + " (" + ago(now, t) + " ago)"
}

// historyKey names a target's history in ?open=: "NAME/ADDR".
func historyKey(n Name, t Target) string { return n.Name + "/" + t.Address }

// toggled is query with key added to open= if absent, removed if present.
func toggled(query url.Values, key string) string {
	q := url.Values{}
	for k, vs := range query {
		q[k] = slices.Clone(vs)
	}
	open := q["open"]
	if i := slices.Index(open, key); i >= 0 {
		open = slices.Delete(open, i, i+1)
	} else {
		open = append(open, key)
	}
	if len(open) == 0 {
		q.Del("open")
	} else {
		q["open"] = open
	}
	return "?" + q.Encode()
}

// anchor is an element id for key: letters, digits and dashes.
func anchor(key string) string {
	return "h-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, key)
}

// newPage renders d; query is the page's query string (?name=, ?open=).
func newPage(d *Document, query url.Values) pageData {
	now := d.now()
	open := map[string]bool{}
	for _, k := range query["open"] {
		open[k] = true
	}
	p := pageData{Doc: d, Time: stamp(now)}
	if d.Role == RoleServer || len(d.Names) > 0 {
		var worst string
		p.Summary, worst = summary(d.Names)
		p.SummaryClass = class(worst)
	}
	if pt := d.Partition; pt != nil {
		pv := &partitionView{Class: "up", Text: "not partitioned"}
		if pt.Partitioned {
			pv.Class, pv.Text = "down", "PARTITIONED, keeping the last verdicts"
		}
		pv.Text += ": " + pt.standing()
		if !pt.Since.IsZero() {
			pv.Text += ", since " + when(now, pt.Since)
		}
		p.Partition = pv
	}
	for _, m := range d.Members {
		p.Members = append(p.Members, memberView{Member: m, Class: class(m.State), Since: when(now, m.Since)})
	}
	for _, v := range d.Views {
		p.Views = append(p.Views, viewView{View: v, Class: class(v.State), Heard: when(now, v.LastHeard)})
	}
	for _, n := range bySeverity(d.Names) {
		nv := nameView{Name: n, Answer: strings.Join(n.answer(), " "), Shown: n.state(), Class: class(n.state()), Columns: columns(n), PerQuery: n.perQuery(), Meaning: n.meaning()}
		if nv.Answer == "" {
			nv.Answer = "(nothing: NODATA)"
		}
		for _, t := range n.Targets {
			key := historyKey(n, t)
			r := rowView{
				Target: t, Answered: n.answered(t), Class: class(orUnknown(t.Verdict)),
				Checks: strings.Join(t.Checks, "; "), Since: when(now, t.Since),
				Reason: recorded(t.Reason, t.Since, now),
				Open:   open[key], Toggle: toggled(query, key) + "#" + anchor(key), Anchor: anchor(key),
			}
			if o := t.Override; o != nil {
				r.Forced = o.State + " (" + o.Selector + ") by " + dash(o.Who) + " on " + o.Node + ", set " + when(now, o.Set)
				if !o.Until.IsZero() {
					r.Forced += ", until " + stamp(o.Until)
				}
				if o.Reason != "" {
					r.Forced += ": " + o.Reason
				}
			}
			for _, c := range nv.Columns {
				o, ok := t.observation(c.Observer)
				if !ok {
					r.Cells = append(r.Cells, cell{Class: "unknown", Text: "–", Title: "no observation"})
					continue
				}
				s := o.shown()
				title := "said " + orUnknown(o.State) + ", last heard " + when(now, o.LastHeard)
				c := cell{Class: class(s), Text: s + " " + seconds(o.AgeSeconds), Title: title, Error: o.Error, ErrClass: "err"}
				if o.Error != "" && s != StateDown {
					c.Error, c.ErrClass = "last check failed: "+o.Error, "err soft"
				}
				r.Cells = append(r.Cells, c)
			}
			for _, h := range slices.Backward(t.History) {
				r.History = append(r.History, changeView{
					Change: h, Time: stamp(h.Time), Ago: ago(now, h.Time),
					FromClass: class(orUnknown(h.From)), ToClass: class(orUnknown(h.To)), UntilText: stamp(h.Until),
				})
			}
			nv.Rows = append(nv.Rows, r)
		}
		p.Names = append(p.Names, nv)
	}
	for _, c := range d.Catalog {
		p.Catalog = append(p.Catalog, catalogView{
			CatalogEntry: c, Class: class(orUnknown(c.State)), Checks: strings.Join(c.Checks, "; "),
			Since: when(now, c.Since), Checked: when(now, c.Checked),
		})
	}
	return p
}
