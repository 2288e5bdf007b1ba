package report

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/goethe-log/goethe/bench/peers"
)

// BenchMedians reads `go test -bench` output (any -count) and returns the
// median events/s of each benchmark, keyed by its name without the
// GOMAXPROCS suffix.
func BenchMedians(r io.Reader) (map[string]float64, error) {
	suffix := regexp.MustCompile(`-\d+$`)
	runs := map[string][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := suffix.ReplaceAllString(f[0], "")
		for i := 2; i+1 < len(f); i++ {
			if f[i+1] != "events/s" {
				continue
			}
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				runs[name] = append(runs[name], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	med := make(map[string]float64, len(runs))
	for k, v := range runs {
		slices.Sort(v)
		if n := len(v); n%2 == 1 {
			med[k] = v[n/2]
		} else {
			med[k] = (v[n/2-1] + v[n/2]) / 2
		}
	}
	return med, nil
}

// layerBar is one bar of a layers panel: a label and the benchmark whose
// median it shows.
type layerBar struct{ label, bench string }

// WriteLayersSVG draws, from the medians of bench/'s benchmarks, what each
// layer costs per engine: writes (raw engine, store, gRPC), reads (raw
// scan, store, gRPC) and group commit (1 vs 16 appenders).
func WriteLayersSVG(path string, med map[string]float64) error {
	engines := []string{"leveldb", "pebble", "bolt"}
	var bars = func(f func(e string) []layerBar) []layerBar {
		var out []layerBar
		for _, e := range engines {
			out = append(out, f(e)...)
		}
		return out
	}
	panels := []struct {
		title string
		bars  []layerBar
	}{
		{"writes: 1 writer, batches of 128 × 100 B, fsync'd (events/s)", bars(func(e string) []layerBar {
			return []layerBar{
				{e + " raw engine", fmt.Sprintf("BenchmarkRawWrite/engine=%s/sync=true/size=100B/batch=128", e)},
				{e + " store", fmt.Sprintf("BenchmarkAppend/engine=%s/sync=true/size=100B/batch=128/appenders=1", e)},
				{e + " gRPC stream", fmt.Sprintf("BenchmarkProduceStream/engine=%s/sync=true/size=100B/batch=128/producers=1/streams=per-producer", e)},
			}
		})},
		{"reads: a 1M-event topic of 100 B events (events/s)", bars(func(e string) []layerBar {
			return []layerBar{
				{e + " raw scan", fmt.Sprintf("BenchmarkRawScan/engine=%s/size=100B/page=1000", e)},
				{e + " store", fmt.Sprintf("BenchmarkRead/engine=%s/size=100B/page=1000", e)},
				{e + " gRPC Consume", fmt.Sprintf("BenchmarkConsume/engine=%s/size=100B", e)},
			}
		})},
		{"group commit: 1 × 100 B per call, fsync'd, store (events/s)", bars(func(e string) []layerBar {
			return []layerBar{
				{e + " 1 appender", fmt.Sprintf("BenchmarkAppend/engine=%s/sync=true/size=100B/batch=1/appenders=1", e)},
				{e + " 16 appenders", fmt.Sprintf("BenchmarkAppend/engine=%s/sync=true/size=100B/batch=1/appenders=16", e)},
			}
		})},
		{"16 producers, 1 × 100 B per call, fsync'd (events/s)", bars(func(e string) []layerBar {
			return []layerBar{
				{e + " store", fmt.Sprintf("BenchmarkAppend/engine=%s/sync=true/size=100B/batch=1/appenders=16", e)},
				{e + " gRPC unary", fmt.Sprintf("BenchmarkProduce/engine=%s/sync=true/size=100B/batch=1/producers=16", e)},
				{e + " gRPC stream", fmt.Sprintf("BenchmarkProduceStream/engine=%s/sync=true/size=100B/batch=1/producers=16/streams=per-producer", e)},
			}
		})},
	}
	var plots []*plot.Plot
	for _, pn := range panels {
		p, err := layersPanel(pn.title, pn.bars, med)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	return savePanels(path, plots, 2, 6*vg.Inch, 4*vg.Inch)
}

func layersPanel(title string, bars []layerBar, med map[string]float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.X.Min = 0
	p.X.Tick.Marker = siTicks{}
	var names []string
	labels := plotter.XYLabels{}
	top := 0.0
	n := len(bars)
	for i, b := range bars {
		v := med[b.bench]
		top = max(top, v)
		y := float64(n - 1 - i)
		names = append(names, b.label)
		text := "–"
		if v > 0 {
			text = number(v)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: v, Y: y})
		labels.Labels = append(labels.Labels, " "+text)
		if v <= 0 {
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(9))
		if err != nil {
			return nil, err
		}
		bar.Horizontal = true
		bar.XMin = y
		engine := strings.Fields(b.label)[0]
		bar.Color = colorOf(peers.System{Name: "goethe", Engine: engine})
		bar.LineStyle.Width = 0
		p.Add(bar)
	}
	return finishBars(p, names, labels, top, vg.Points(7))
}
