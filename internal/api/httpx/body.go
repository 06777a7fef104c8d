package httpx

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Request bodies are read under a pace: the body must keep arriving at an
// average of at least MinRate bytes a second after a Grace period, and no
// single wait for data may last longer than Idle. A 1 GB upload on a slow
// link passes; a client that trickles a byte every few seconds (a slowloris
// holding connections and upload slots) is cut off after Grace.
type Pace struct {
	Grace   time.Duration // before the rate counts; default 10 s
	MinRate int64         // bytes per second on average; default 1 KiB/s
	Idle    time.Duration // longest wait for the next bytes; default 30 s
}

// DefaultPace is what the server uses unless configured otherwise.
var DefaultPace = Pace{Grace: 10 * time.Second, MinRate: 1 << 10, Idle: 30 * time.Second}

// ErrClientGone marks an error caused by the client closing the connection
// before its request was complete: nothing was kept, and it is logged as
// the client's doing, not the server's.
var ErrClientGone = errors.New("the client closed the connection before the request was complete")

// ErrTooSlow marks a body that fell below the pace.
var ErrTooSlow = errors.New("the request body arrived too slowly")

// Paced applies p to the body of every request that has one. Deadlines are
// moved only while the body is being read and cleared at its end, so
// long-running responses (downloads, event streams) are not affected.
func Paced(p Pace, next http.Handler) http.Handler {
	if p.Grace <= 0 {
		p.Grace = DefaultPace.Grace
	}
	if p.MinRate <= 0 {
		p.MinRate = DefaultPace.MinRate
	}
	if p.Idle <= 0 {
		p.Idle = DefaultPace.Idle
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		pb := &pacedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), pace: p, start: time.Now()}
		pb.extend()
		r.Body = pb
		next.ServeHTTP(w, r)
	})
}

type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	pace  Pace
	start time.Time
	n     int64
	done  bool
}

// extend sets the read deadline: the earlier of what the average rate
// allows for the bytes read so far and now + Idle.
func (b *pacedBody) extend() {
	byRate := b.start.Add(b.pace.Grace + time.Duration(b.n*int64(time.Second)/b.pace.MinRate))
	d := time.Now().Add(b.pace.Idle)
	if byRate.Before(d) {
		d = byRate
	}
	_ = b.rc.SetReadDeadline(d) // unsupported writers (tests' recorders): no pace
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
		b.extend()
	case errors.Is(err, io.EOF):
		if !b.done {
			b.done = true
			// The server reads on in the background to notice a client
			// going away; a deadline left set would cancel the request.
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return n, &ota.Error{Code: ota.CodeInvalid, Field: "body",
				Message: "the request body arrived too slowly (under the server's minimum rate, or idle too long): retry on a better connection", Err: ErrTooSlow}
		}
	}
	return n, err
}

// Upload wraps a file being streamed from a request (a multipart part) so
// that its read errors say whose fault they are: the client closing the
// connection (ErrClientGone), a body over the limit (*http.MaxBytesError,
// passed through), a body too slow (ErrTooSlow), or a malformed multipart
// body (CodeInvalid, a 400 in every dialect). Stores that see one of these
// *ota.Error return it as it is, after removing what they wrote.
func Upload(r *http.Request, rd io.Reader) io.Reader { return &uploadReader{r: r, rd: rd} }

type uploadReader struct {
	r  *http.Request
	rd io.Reader
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.rd.Read(p)
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	return n, UploadError(u.r, err)
}

// UploadError classifies an error met while reading a request body (see
// Upload).
func UploadError(r *http.Request, err error) error {
	var tooLarge *http.MaxBytesError
	var oe *ota.Error
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &oe):
		return err
	case r.Context().Err() != nil:
		// net/http cancels the request's context when reading from the
		// connection fails: the client went away mid-body.
		return &ota.Error{Code: ota.CodeInvalid, Field: "body", Message: ErrClientGone.Error() + ": nothing was kept", Err: ErrClientGone}
	}
	return &ota.Error{Code: ota.CodeInvalid, Field: "body", Message: "malformed request body (" + err.Error() + "): send the whole body, and end a multipart body with its closing boundary", Err: err}
}
