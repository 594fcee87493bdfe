package embed

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/net/http2"
)

// h2AckFilter drops the first SETTINGS ACK and nothing else, wherever the
// frame boundaries fall in the reads.
func TestH2AckFilter(t *testing.T) {
	frame := func(typ http2.FrameType, flags http2.Flags, payload string) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(typ), byte(flags), 0, 0, 0, 0}, payload...)
	}
	ack := frame(http2.FrameSettings, http2.FlagSettingsAck, "")
	settings := frame(http2.FrameSettings, 0, "\x00\x03\x00\x00\x00\x64")
	ping := frame(http2.FramePing, 0, "12345678")
	// A DATA frame whose payload looks like a SETTINGS ACK is passed whole.
	data := frame(http2.FrameData, 0, string(ack))
	preface := []byte(http2.ClientPreface)
	in := bytes.Join([][]byte{preface, settings, data, ping, ack, ping, ack}, nil)
	want := bytes.Join([][]byte{preface, settings, data, ping, ping, ack}, nil)
	for _, chunk := range []int{1, 2, 7, 9, 10, 64, 4096} {
		f := &h2AckFilter{r: &chunkReader{b: in, n: chunk}, left: uint32(len(preface))}
		got, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("reads of %d: got %q\nwant %q", chunk, got, want)
		}
	}
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
