package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Result is what one run measured. Its JSON form is what --json prints.
type Result struct {
	Command   string   `json:"command"`
	Endpoints []string `json:"endpoints"`
	Conns     int      `json:"conns"`
	Clients   int      `json:"clients"`
	// Total is the number of requests asked for; Done those that finished
	// (fewer when the run timed out), OK the successful ones and Errors
	// the failed ones.
	Total  int   `json:"total"`
	Done   int64 `json:"done"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
	// StoppedEarly is set when the run ended (Config.Timeout, a signal)
	// before every request was done.
	StoppedEarly bool `json:"stopped_early,omitempty"`
	// ErrorMessages counts the first distinct error messages.
	ErrorMessages map[string]int64 `json:"error_messages,omitempty"`
	// Seconds is the wall time from the first request to the last reply.
	Seconds float64 `json:"seconds"`
	// RequestsPerSec is OK / Seconds.
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Latency and Histogram cover successful requests only.
	Latency   Latency `json:"latency_ms"`
	Histogram []Bar   `json:"histogram"`
	// Watch is set by the watch command, whose requests are its puts.
	Watch *WatchResult `json:"watch,omitempty"`
}

// WatchResult is what the watch command measured besides its puts.
type WatchResult struct {
	Watchers int `json:"watchers"`
	Streams  int `json:"streams"`
	// CreateSeconds is the time to create every watcher, concurrently;
	// Create the time each one took.
	CreateSeconds float64 `json:"create_seconds"`
	Create        Latency `json:"create_ms"`
	// Expected is watchers × successful puts; Received the events that
	// arrived before the run gave up waiting. EventsPerSec is Received
	// over the time from the first put to the last event.
	Expected     int64   `json:"expected_events"`
	Received     int64   `json:"received_events"`
	EventsPerSec float64 `json:"events_per_sec"`
	// EventLatency is the delay from a put's acknowledgement to each
	// watcher's receipt of its event; BeforeAck events arrived before the
	// acknowledgement and count as 0.
	EventLatency   Latency `json:"event_latency_ms"`
	EventHistogram []Bar   `json:"event_histogram"`
	BeforeAck      int64   `json:"events_before_ack"`
	// StreamErrors counts errors the watch streams reported.
	StreamErrors    int64            `json:"stream_errors"`
	StreamErrorMsgs map[string]int64 `json:"stream_error_messages,omitempty"`
}

// Latency summarizes a Histogram, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	Min    float64 `json:"min"`
	Avg    float64 `json:"avg"`
	Stddev float64 `json:"stddev"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p99_9"`
	Max    float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summarize(h *Histogram) Latency {
	return Latency{
		Count:  h.Count(),
		Min:    ms(h.Min()),
		Avg:    ms(h.Mean()),
		Stddev: ms(h.Stddev()),
		P50:    ms(h.Quantile(0.50)),
		P90:    ms(h.Quantile(0.90)),
		P99:    ms(h.Quantile(0.99)),
		P999:   ms(h.Quantile(0.999)),
		Max:    ms(h.Max()),
	}
}

// WriteJSON writes r as one JSON object on one line.
func (r *Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteText writes r for a reader. precise prints latencies in
// microseconds with three decimals instead of milliseconds with three.
func (r *Result) WriteText(w io.Writer, precise bool) error {
	var b strings.Builder
	lat := func(v float64) string {
		if precise {
			return fmt.Sprintf("%.3f µs", v*1000)
		}
		return fmt.Sprintf("%.3f ms", v)
	}
	fmt.Fprintf(&b, "Summary (%s, %d conns, %d clients, endpoints %s):\n", r.Command, r.Conns, r.Clients, strings.Join(r.Endpoints, ","))
	fmt.Fprintf(&b, "  Total:\t%.4f secs.\n", r.Seconds)
	fmt.Fprintf(&b, "  Requests:\t%d ok, %d errors, %d of %d done\n", r.OK, r.Errors, r.Done, r.Total)
	if r.StoppedEarly {
		b.WriteString("  Stopped early:\tthe run timed out or was interrupted\n")
	}
	fmt.Fprintf(&b, "  Requests/sec:\t%.1f\n", r.RequestsPerSec)
	writeLatency(&b, r.Latency, lat)
	writeBars(&b, "Response time histogram", r.Histogram, precise)
	writeErrors(&b, "Errors", r.ErrorMessages)
	if wr := r.Watch; wr != nil {
		fmt.Fprintf(&b, "\nWatch (%d watchers on %d streams):\n", wr.Watchers, wr.Streams)
		fmt.Fprintf(&b, "  Created in:\t%.4f secs. (each: avg %s, p99 %s)\n", wr.CreateSeconds, lat(wr.Create.Avg), lat(wr.Create.P99))
		fmt.Fprintf(&b, "  Events:\t%d of %d received, %d before their put's response\n", wr.Received, wr.Expected, wr.BeforeAck)
		fmt.Fprintf(&b, "  Events/sec:\t%.1f\n", wr.EventsPerSec)
		fmt.Fprintf(&b, "  Stream errors:\t%d\n", wr.StreamErrors)
		b.WriteString("  Delay from put response to event:\n")
		writeLatency(&b, wr.EventLatency, lat)
		writeBars(&b, "Event delay histogram", wr.EventHistogram, precise)
		writeErrors(&b, "Stream errors", wr.StreamErrorMsgs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, l Latency, lat func(float64) string) {
	fmt.Fprintf(b, "  Fastest:\t%s\n  Average:\t%s\n  Stddev:\t%s\n  Slowest:\t%s\n", lat(l.Min), lat(l.Avg), lat(l.Stddev), lat(l.Max))
	b.WriteString("  Latency distribution:\n")
	for _, p := range []struct {
		name string
		v    float64
	}{{"50%", l.P50}, {"90%", l.P90}, {"99%", l.P99}, {"99.9%", l.P999}} {
		fmt.Fprintf(b, "    %s in %s\n", p.name, lat(p.v))
	}
}

// barWidth is the length of the longest bar.
const barWidth = 40

func writeBars(b *strings.Builder, title string, bars []Bar, precise bool) {
	if len(bars) == 0 {
		return
	}
	unit := "ms"
	if precise {
		unit = "µs"
	}
	fmt.Fprintf(b, "\n%s (%s):\n", title, unit)
	peak := slices.MaxFunc(bars, func(x, y Bar) int { return cmp.Compare(x.Count, y.Count) }).Count
	for _, bar := range bars {
		upTo := bar.UpToMs
		if precise {
			upTo *= 1000
		}
		n := 0
		if peak > 0 {
			n = int((bar.Count*barWidth + peak - 1) / peak)
		}
		fmt.Fprintf(b, "  <= %-9g [%d]\t|%s\n", upTo, bar.Count, strings.Repeat("∎", n))
	}
}

func writeErrors(b *strings.Builder, title string, msgs map[string]int64) {
	if len(msgs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s (first %d distinct messages):\n", title, maxErrorMessages)
	keys := make([]string, 0, len(msgs))
	for k := range msgs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int { return cmp.Or(cmp.Compare(msgs[y], msgs[x]), strings.Compare(x, y)) })
	for _, k := range keys {
		fmt.Fprintf(b, "  %d\t%s\n", msgs[k], k)
	}
}
