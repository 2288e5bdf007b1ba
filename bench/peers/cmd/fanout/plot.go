package main

import (
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/goethe-log/goethe/bench/peers"
)

// writePlot draws one panel per interval: for each system, the median
// Produce p99 with no followers and with the most followers, side by side.
func writePlot(path string, recs []peers.FanoutRecord) error {
	var (
		systems   []string
		intervals []float64
		most      int
	)
	for _, r := range recs {
		if !slices.Contains(systems, r.System.Name) {
			systems = append(systems, r.System.Name)
		}
		if !slices.Contains(intervals, r.IntervalMS) {
			intervals = append(intervals, r.IntervalMS)
		}
		most = max(most, r.Followers)
	}
	p99 := func(r peers.FanoutRecord) float64 { return r.Produce.P99 / 1000 }
	var panels []*plot.Plot
	for _, iv := range intervals {
		p := plot.New()
		p.Title.Text = "Produce p99, one Produce per " + peers.IntervalName(iv)
		if iv == 0 {
			p.Title.Text = "Produce p99, closed loop"
		}
		p.Title.TextStyle.Font.Size = vg.Points(9)
		p.Y.Label.Text = "ms (median over rounds)"
		p.Y.Min = 0
		for i, f := range []int{0, most} {
			v := make(plotter.Values, len(systems))
			for j, s := range systems {
				if v[j] = peers.FanoutMedian(recs, s, iv, f, p99); math.IsNaN(v[j]) {
					v[j] = 0 // no successful run
				}
			}
			bars, err := plotter.NewBarChart(v, vg.Points(18))
			if err != nil {
				return err
			}
			bars.LineStyle.Width = 0
			bars.Color = color.RGBA{R: 0x9e, G: 0xc0, B: 0xe8, A: 0xff}
			if i == 1 {
				bars.Color = color.RGBA{R: 0x31, G: 0x6b, B: 0xc4, A: 0xff}
			}
			bars.Offset = vg.Points(float64(2*i-1) * 9.5)
			p.Add(bars)
			p.Legend.Add(followersName(f), bars)
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		p.NominalX(systems...)
		p.Add(plotter.NewGrid())
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	w, h := vg.Points(260), vg.Points(220)
	c := vgsvg.New(w*vg.Length(len(panels)), h)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Points(12), PadTop: vg.Points(6),
		PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10)}
	for i, p := range panels {
		p.Draw(tiles.At(dc, i, 0))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// followersName names a follower count in the legend: "no followers",
// "2,000 followers".
func followersName(n int) string {
	switch n {
	case 0:
		return "no followers"
	case 1:
		return "1 follower"
	}
	d := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String() + " followers"
}
