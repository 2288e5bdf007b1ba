package loadgen

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how often a progress bar is redrawn. The hot paths only
// bump atomic counters; a progress goroutine reads them at this pace.
const progressEvery = 150 * time.Millisecond

// progress draws one progress bar on a writer from a counter it polls.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	value func() (n int64, desc string)
	stop  chan struct{}
	done  chan struct{}
}

// startProgress draws a bar of max steps on w, polling value; it returns
// nil, drawing nothing, when w is nil or io.Discard. unit names the steps
// and shows their count and rate ("" hides both). A desc returned by value
// replaces the description.
func startProgress(w io.Writer, max int64, desc, unit string, value func() (int64, string)) *progress {
	if w == nil || w == io.Discard {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true),
	}
	if unit != "" {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	p := &progress{
		w:     w,
		bar:   progressbar.NewOptions64(max, opts...),
		value: value,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.update()
		}
	}
}

func (p *progress) update() {
	n, desc := p.value()
	if desc != "" {
		p.bar.Describe(desc)
	}
	_ = p.bar.Set64(min(n, p.bar.GetMax64()))
}

// finish draws the final value and ends the line. full fills the bar (a
// duration that has passed). It is a no-op on a nil progress.
func (p *progress) finish(full bool) {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.update()
	if full {
		_ = p.bar.Finish()
	}
	_, _ = io.WriteString(p.w, "\n")
}
