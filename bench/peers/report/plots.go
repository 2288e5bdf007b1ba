package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/goethe-log/goethe/bench/peers"
)

func init() {
	plot.DefaultFont.Variant = "Sans"
	plotter.DefaultFont.Variant = "Sans"
}

// svgFonts gives the SVG's font a fallback: the plots are laid out with
// Liberation Sans's metrics, which Arial and Helvetica share, and fonts are
// not embedded (it would add half a megabyte per file).
var svgFonts = strings.NewReplacer(
	"font-family:Liberation Sans;", "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;",
	"font-family:Liberation Serif;", "font-family:'Liberation Serif','Times New Roman',Times,serif;",
)

// colorOf gives each system a fixed colour: blues for JetStream, reds for
// Redis (dark at fsync), greens for Goethe's engines, grey for --sync=false.
func colorOf(s peers.System) color.Color {
	hex := func(v uint32) color.Color {
		return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
	}
	switch {
	case s.Name == "nats" && s.Fsync:
		return hex(0x2166ac)
	case s.Name == "nats":
		return hex(0x92c5de)
	case s.Name == "redis" && s.Fsync:
		return hex(0xb2182b)
	case s.Name == "redis":
		return hex(0xf4a582)
	case s.Durability == peers.DurabilityNoSync:
		return hex(0xa0a0a0)
	case s.Engine == "pebble":
		return hex(0x41ab5d)
	case s.Engine == "bolt":
		return hex(0x97d28d)
	}
	return hex(0x00702c)
}

// WritePlots writes ThroughputSVG (one panel per throughput workload,
// a horizontal bar per system) and, if the records hold the latency
// workload, LatencySVG (end-to-end percentiles per system, log scale) into
// dir.
func (r *Report) WritePlots(dir string) error {
	var panels []*plot.Plot
	for _, wl := range r.Workloads {
		if wl.Metric == "latency" {
			continue
		}
		p, err := r.throughputPanel(wl)
		if err != nil {
			return err
		}
		panels = append(panels, p)
	}
	if len(panels) > 0 {
		if err := savePanels(filepath.Join(dir, ThroughputSVG), panels, 2, 6*vg.Inch, 3.3*vg.Inch); err != nil {
			return err
		}
	}
	for _, wl := range r.Workloads {
		if wl.Metric != "latency" {
			continue
		}
		p, err := r.latencyPlot(wl)
		if err != nil {
			return err
		}
		if err := savePanels(filepath.Join(dir, LatencySVG), []*plot.Plot{p}, 1, 9*vg.Inch, 5.5*vg.Inch); err != nil {
			return err
		}
		break
	}
	return nil
}

// throughputPanel draws wl's figure for every system as horizontal bars,
// top to bottom in the report's system order, each labelled with its value.
func (r *Report) throughputPanel(wl peers.Workload) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = panelTitle(wl)
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.X.Label.Text = wl.Metric
	p.X.Min = 0
	p.X.Tick.Marker = siTicks{}
	var (
		names []string
		cells []*Cell
	)
	for _, s := range r.Systems {
		if c := r.Cell(wl.ID, s.Key()); c != nil {
			cells = append(cells, c)
		}
	}
	top := 0.0
	for _, c := range cells {
		top = max(top, c.Value, c.Max)
	}
	labels := plotter.XYLabels{}
	n := len(cells)
	for i, c := range cells {
		y := float64(n - 1 - i) // first system at the top
		names = append(names, Short(c.System))
		text := number(c.Value)
		if c.OK == 0 {
			text = "failed"
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: c.Value, Y: y})
		labels.Labels = append(labels.Labels, " "+text)
		if c.OK == 0 {
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{c.Value}, vg.Points(13))
		if err != nil {
			return nil, err
		}
		bar.Horizontal = true
		bar.XMin = y
		bar.Color = colorOf(c.System)
		bar.LineStyle.Width = 0
		p.Add(bar)
	}
	return finishBars(p, names, labels, top, vg.Points(8))
}

// finishBars completes a panel of horizontal bars drawn top to bottom:
// names on the Y axis (given top first), the value labels at the bars'
// ends in the given font size, and room on the right for them.
func finishBars(p *plot.Plot, names []string, labels plotter.XYLabels, top float64, font vg.Length) (*plot.Plot, error) {
	n := len(names)
	slicesReverse(names)
	p.NominalY(names...)
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = font
		l.TextStyle[i].YAlign = draw.YCenter
	}
	p.Add(l)
	if top <= 0 {
		top = 1
	}
	p.X.Max = top * 1.25 // room for the value labels
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	return p, nil
}

func panelTitle(wl peers.Workload) string {
	c := wl.Config
	switch {
	case wl.ReadBack():
		return fmt.Sprintf("(c) read back %s × %s events", count(c.Events), size(c.Size))
	case c.Pipelined:
		return fmt.Sprintf("(%s) 1 producer, %d single %s events pipelined", letter(wl), c.Batch, size(c.Size))
	case c.Batch > 1:
		return fmt.Sprintf("(%s) 1 producer, batches of %d × %s", letter(wl), c.Batch, size(c.Size))
	}
	return fmt.Sprintf("(%s) %d producer%s, 1 × %s per call, wait for ack", letter(wl), c.Producers, plural(c.Producers), size(c.Size))
}

// letter is the workload's letter as its title gives it, "(b')" → "b'",
// else the first character of its id.
func letter(wl peers.Workload) string {
	if strings.HasPrefix(wl.Title, "(") {
		if i := strings.IndexByte(wl.Title, ')'); i > 1 {
			return wl.Title[1:i]
		}
	}
	return wl.ID[:1]
}

func size(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func count(n int64) string { return number(float64(n)) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func slicesReverse(s []string) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// latencyPlot draws wl's end-to-end percentiles, one line per system, on a
// log scale.
func (r *Report) latencyPlot(wl peers.Workload) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("(e) end-to-end latency, %s events/s of %s offered, 1 following consumer",
		number(wl.Config.Rate), size(wl.Config.Size))
	p.Y.Label.Text = "ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.NominalX(PercentileNames[:]...)
	lo, hi := math.Inf(1), 0.0
	for _, s := range r.Systems {
		c := r.Cell(wl.ID, s.Key())
		if c == nil || c.OK == 0 {
			continue
		}
		pts := make(plotter.XYs, len(c.E2E))
		for i, v := range c.E2E {
			v = max(v, 0.001) // a log scale cannot show 0
			pts[i] = plotter.XY{X: float64(i), Y: v}
			lo, hi = min(lo, v), max(hi, v)
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = colorOf(s), colorOf(s)
		line.Width = vg.Points(2)
		if s.Durability == peers.DurabilityNoSync || (s.Peer && !s.Fsync) {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line, points)
		name := Short(s)
		if c.Saturated() {
			name += fmt.Sprintf(" (saturated at %s/s)", number(c.EventsPerSec))
		}
		p.Legend.Add(name, line, points)
	}
	if hi > 0 {
		// Leave the top 35% of the height to the legend.
		bottom := math.Floor(math.Log10(lo))
		top := math.Log10(hi) + 0.1
		p.Y.Min = math.Pow(10, bottom)
		p.Y.Max = math.Pow(10, top+(top-bottom)*0.35/0.65)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// savePanels lays panels out cols wide, each w × h, and writes them as one
// SVG file.
func savePanels(path string, panels []*plot.Plot, cols int, w, h vg.Length) error {
	rows := (len(panels) + cols - 1) / cols
	c := vgsvg.New(w*vg.Length(cols), h*vg.Length(rows))
	dc := draw.New(c)
	// White background: the SVG is read on light and dark pages alike.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(14), PadY: vg.Points(14),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(14)}
	for i, p := range panels {
		p.Draw(tiles.At(dc, i%cols, i/cols))
	}
	var b strings.Builder
	if _, err := c.WriteTo(&b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(svgFonts.Replace(b.String())), 0o644)
}

// siTicks marks a linear axis with round values written 0, 200k, 1.5M.
type siTicks struct{}

func (siTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = number(ticks[i].Value)
		}
	}
	return ticks
}
