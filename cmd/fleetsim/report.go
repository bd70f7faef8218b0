package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// writeText prints the verification report for people: per topic totals,
// then the first violations of each kind, then the verdict.
func (r *Report) writeText(w io.Writer, ackedPath string) {
	run := ""
	if r.Run != "" {
		run = " (run " + r.Run + ")"
	}
	fmt.Fprintf(w, "fleetsim verify: %s%s: %d acknowledged records expected\n\n", ackedPath, run, r.Expected)
	rows := [][]string{{"topic", "records", "checked", "expected", "found", "missing", "dup ok", "dup bad", "reorder",
		"wrong key", "wrong part", "misrouted", "unacked extra", "unknown extra", "other run", "unparseable", "no seq"}}
	for _, t := range append(r.Topics, r.Total) {
		row := []string{t.Topic}
		for _, n := range []int64{t.Records, t.Checked, t.Expected, t.Found, t.Missing, t.DupAllowed, t.Duplicates,
			t.Reorders, t.WrongKey, t.WrongPartition, t.Misrouted, t.UnackedExtras, t.UnknownExtras,
			t.OtherRun, t.Unparseable, t.NoSeq} {
			row = append(row, strconv.FormatInt(n, 10))
		}
		rows = append(rows, row)
	}
	writeTable(w, rows)

	for _, t := range r.Skipped {
		fmt.Fprintf(w, "\nnot checked: the acked file expects records in %s, which was not read (--topics)\n", t)
	}
	for _, p := range r.Incomplete {
		fmt.Fprintf(w, "\nnot read to the end before --timeout: %s\n", p)
	}
	for _, g := range r.Violations {
		unit := "records"
		if g.Kind == vLoss {
			unit = "seqs missing"
		}
		fmt.Fprintf(w, "\n%s: %d %s", g.Kind, g.Count, unit)
		if int64(len(g.First)) < g.Count {
			fmt.Fprintf(w, " (first %d listed)", len(g.First))
		}
		fmt.Fprintln(w)
		for _, v := range g.First {
			if v.Kind == vLoss {
				seqs := fmt.Sprintf("seq %d", v.Seq)
				if v.SeqTo > 0 {
					seqs = fmt.Sprintf("seq %d-%d", v.Seq, v.SeqTo)
				}
				fmt.Fprintf(w, "  %s %s %s\n", v.Device, v.Topic, seqs)
				continue
			}
			fmt.Fprintf(w, "  %s %s partition %d offset %d seq %d: %s\n", v.Device, v.Topic, v.Partition, v.Offset, v.Seq, v.Detail)
		}
	}
	if r.OK {
		fmt.Fprintln(w, "\nOK: no loss, no reordering, no unexpected duplicate")
		return
	}
	var n int64
	for _, g := range r.Violations {
		n += g.Count
	}
	fmt.Fprintf(w, "\nFAILED: %d violations\n", n)
}

// writeTable prints rows as columns, the first left-aligned, the others
// right-aligned.
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-len(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}
