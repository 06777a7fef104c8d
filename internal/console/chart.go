package console

import (
	"github.com/updraft-ota/updraft/internal/store"
)

// barChart is a horizontal bar chart drawn as inline SVG by the template:
// no script, no library.
type barChart struct {
	Bars   []bar
	Total  int64
	Height int // of the SVG, in px
}

type bar struct {
	Label string
	Value int64
	Width float64 // percent of the plot width
	Y     int
	Pct   int
}

const barHeight = 22

// versionChart turns a version distribution into bars, the largest first.
func versionChart(counts []store.VersionCount) barChart {
	var ch barChart
	var max int64
	for _, vc := range counts {
		ch.Total += vc.Devices
		if vc.Devices > max {
			max = vc.Devices
		}
	}
	for i, vc := range counts {
		label := vc.Version
		if label == "" {
			label = "(not reported)"
		}
		b := bar{Label: label, Value: vc.Devices, Y: i * barHeight}
		if max > 0 {
			b.Width = float64(vc.Devices) * 55 / float64(max) // of the plot: labels take the left 32 %
		}
		if ch.Total > 0 {
			b.Pct = int(vc.Devices * 100 / ch.Total)
		}
		ch.Bars = append(ch.Bars, b)
	}
	ch.Height = len(ch.Bars) * barHeight
	return ch
}
