package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table writes d as plain text for a terminal, columns aligned with
// spaces and no colours:
//
//	node dns1 (server, observer eu-west) at 2026-11-26T02:01:14Z
//	partition: no; hearing 3 of 3 voters (need 2, servers): dns1 self, dns2 heard, w1 witness heard; 4 of 4 observers
//
//	MEMBER  ROLE    OBSERVER  STATE  SINCE  ADDR
//	...
//
//	VIEW OF  LOCATION  STATE  HEARD  UP  DOWN  SYNCED
//	...
//
//	app.gslb.example.com. policy=priority quorum=majority ttl=10 fallback=all
//	answer: standby 198.51.100.10 2001:db8:1::10
//	TARGET      TIER  WEIGHT  OWNER  VERDICT  SINCE                           agent1     dns1
//	192.0.2.10  1     1       -      up       2026-11-26T02:01:02Z (12s ago)  up 0.4s    up 0.0s
//
// Members, then the observers' views this node holds; then per name the
// targets as rows and observers as columns (state and age of the
// observation), then "error ADDR OBSERVER: ..." for each observer whose
// probe fails; then the targets the node probes itself, if any.
func Table(w io.Writer, d *Document) error {
	ew := &errWriter{w: w}
	now := d.now()
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	row := func(cells ...string) {
		for i, c := range cells {
			cells[i] = oneLine.Replace(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}

	fmt.Fprintf(ew, "node %s (%s, observer %s) at %s\n", dash(d.Node), dash(d.Role), dash(d.Observer), stamp(now))
	if p := d.Partition; p != nil {
		state := "no"
		if p.Partitioned {
			state = "YES, keeping the last verdicts"
		}
		since := ""
		if !p.Since.IsZero() {
			since = fmt.Sprintf(" since %s (%s ago)", stamp(p.Since), ago(now, p.Since))
		}
		fmt.Fprintf(ew, "partition: %s%s; %s\n", state, since, p.standing())
	}

	fmt.Fprintln(ew)
	if len(d.Members) == 0 {
		fmt.Fprintln(ew, "members: none (no cluster)")
	} else {
		row("MEMBER", "ROLE", "OBSERVER", "STATE", "SINCE", "ADDR")
		for _, m := range d.Members {
			row(dash(m.Name), dash(m.Role), dash(m.Observer), dash(m.State), when(now, m.Since), dash(m.Addr))
		}
		tw.Flush()
	}
	if len(d.Views) > 0 {
		fmt.Fprintln(ew)
		row("VIEW OF", "LOCATION", "STATE", "HEARD", "UP", "DOWN", "SYNCED")
		for _, v := range d.Views {
			heard := "never"
			if !v.LastHeard.IsZero() {
				heard = ago(now, v.LastHeard) + " ago"
			}
			synced := "yes"
			if !v.Synced {
				synced = "no"
			}
			row(dash(v.Node), dash(v.Location), dash(v.State), heard, fmt.Sprint(v.Up), fmt.Sprint(v.Down), synced)
		}
		tw.Flush()
	}

	for _, n := range d.Names {
		fmt.Fprintln(ew)
		fmt.Fprintf(ew, "%s policy=%s quorum=%s ttl=%d fallback=%s\n", n.Name, dash(n.Policy), dash(n.Quorum), n.TTL, dash(n.Fallback))
		answer := strings.Join(n.answer(), " ")
		if answer == "" {
			answer = "(nothing: NODATA)"
		}
		if pq := n.perQuery(); pq != "" {
			answer += " (" + pq + ")"
		}
		fmt.Fprintf(ew, "answer: %s %s\n", dash(n.state()), answer)
		if len(n.Targets) == 0 {
			fmt.Fprintln(ew, "no targets")
			continue
		}
		cols := columns(n)
		head := []string{"TARGET", "TIER", "WEIGHT", "OWNER", "VERDICT", "SINCE"}
		for _, c := range cols {
			head = append(head, c.Observer)
		}
		row(head...)
		for _, t := range n.Targets {
			verdict := orUnknown(t.Verdict)
			if t.Override != nil {
				verdict += " (" + t.Override.State + ")"
			}
			cells := []string{t.Address, fmt.Sprint(t.Tier), fmt.Sprint(t.Weight), dash(t.Owner), verdict, when(now, t.Since)}
			for _, c := range cols {
				o, ok := t.observation(c.Observer)
				if !ok {
					cells = append(cells, "-")
					continue
				}
				cells = append(cells, o.shown()+" "+seconds(o.AgeSeconds))
			}
			row(cells...)
		}
		tw.Flush()
		for _, t := range n.Targets {
			for _, o := range t.Observations {
				if o.Error != "" {
					fmt.Fprintf(ew, "error %s %s: %s\n", t.Address, o.Observer, oneLine.Replace(o.Error))
				}
			}
		}
	}

	if len(d.Catalog) > 0 {
		fmt.Fprintln(ew)
		row("PROBED", "STATE", "SINCE", "CHECKED", "CHECKS", "ERROR")
		for _, c := range d.Catalog {
			checked := "never"
			if !c.Checked.IsZero() {
				checked = ago(now, c.Checked) + " ago"
			}
			row(c.Address, orUnknown(c.State), when(now, c.Since), checked, strings.Join(c.Checks, "; "), dash(c.Error))
		}
		tw.Flush()
	}
	return ew.err
}

// oneLine keeps a cell in its cell: tabs and newlines in the data would
// break the alignment.
var oneLine = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error so Table can report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}
