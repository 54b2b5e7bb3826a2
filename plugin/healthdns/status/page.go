package status

import (
	_ "embed"
	"html/template"
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
	Answer  string
	Shown   string // the state shown
	Class   string // of the state
	Columns []column
	Rows    []rowView
}

type rowView struct {
	Target
	Answered bool
	Class    string // of the verdict
	Checks   string
	Since    string
	Cells    []cell
	History  []changeView // newest first
}

type cell struct {
	Class, Text, Title string
	Error              string // why the observer's probe fails, shown under the state
}

type changeView struct {
	Change
	Time, Ago, FromClass, ToClass string
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

func newPage(d *Document) pageData {
	now := d.now()
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
		nv := nameView{Name: n, Answer: strings.Join(n.answer(), " "), Shown: n.state(), Class: class(n.state()), Columns: columns(n)}
		if nv.Answer == "" {
			nv.Answer = "(nothing: NODATA)"
		}
		for _, t := range n.Targets {
			r := rowView{
				Target: t, Answered: n.answered(t), Class: class(orUnknown(t.Verdict)),
				Checks: strings.Join(t.Checks, "; "), Since: when(now, t.Since),
			}
			for _, c := range nv.Columns {
				o, ok := t.observation(c.Observer)
				if !ok {
					r.Cells = append(r.Cells, cell{Class: "unknown", Text: "–", Title: "no observation"})
					continue
				}
				s := o.shown()
				title := "said " + orUnknown(o.State) + ", last heard " + when(now, o.LastHeard)
				r.Cells = append(r.Cells, cell{Class: class(s), Text: s + " " + seconds(o.AgeSeconds), Title: title, Error: o.Error})
			}
			for _, h := range slices.Backward(t.History) {
				r.History = append(r.History, changeView{
					Change: h, Time: stamp(h.Time), Ago: ago(now, h.Time),
					FromClass: class(orUnknown(h.From)), ToClass: class(orUnknown(h.To)),
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
