package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// MaxStreamInFlight bounds the requests of one ProduceStream that the server
// has received and not yet answered. At the bound the server stops reading
// the stream until it has sent a response, so HTTP/2 flow control holds the
// client back: a stream holds at most this many decoded requests (each at
// most Options.MaxRequestBytes) and as many append goroutines, and fills
// a bounded share of the store's queue (the store does not bound it,
// 4,096). It does not limit throughput in practice: 1,024 requests per
// commit of a few hundred µs is millions of requests per second.
const MaxStreamInFlight = 1024

// MaxRequestBytesHeader is the response header of a ProduceStream that
// holds the server's max request message size (Options.MaxRequestBytes,
// decimal bytes), sent when the stream starts. A request message larger
// than that ends the stream with RESOURCE_EXHAUSTED, as gRPC cannot skip
// it; a client that checks its requests against it fails them alone.
const MaxRequestBytesHeader = "goethe-max-request-bytes"

// ProduceStream runs each request of the stream as a Produce of its own,
// concurrently, so that group commit merges them, and answers each on the
// response stream as it completes. See produceStream for the lifecycle.
func (v *service) ProduceStream(stream grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]) error {
	return v.status(v.produceStream(stream))
}

// streamAnswer is the outcome of one request of a ProduceStream, on its
// way to the sender.
type streamAnswer struct {
	id  uint64
	res *goethev1.ProduceResponse
	err error
}

// produceStream serves one ProduceStream. Its goroutines:
//
//   - the handler's own goroutine is the only one that calls Send (gRPC
//     allows one Send at a time), answering requests in the order their
//     appends complete, which is commit order;
//   - a receiver goroutine reads requests and hands each to an idle worker
//     goroutine, or starts a new one, which calls produce (the code path of
//     the unary Produce), so that the requests in flight append
//     concurrently and group commit merges them;
//   - workers hand their outcome to the sender through a channel with room
//     for every request in flight, so they never block on it.
//
// The stream ends when receiving ends (the client half-closed it: OK; or it
// is gone: its error), when Stop begins (UNAVAILABLE), or when a Send fails.
// In every case it first stops taking requests, waits for the appends in
// flight and (unless sending failed) sends their answers. Appends run under
// a context that Stop does not cancel, so a request the server has taken is
// finished and answered during a graceful stop; they are cancelled when the
// client is gone (receiving or sending failed), and since the store always
// reports an append it has queued, that wait is one commit at most.
//
// The receiver goroutine may still be blocked in Recv when the handler
// returns; gRPC then ends the stream, which unblocks it, and it exits
// without starting anything. Workers exit once the stream stops taking
// requests.
func (v *service) produceStream(stream grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]) error {
	ctx := stream.Context() // ends when the client is gone or Stop begins
	// The header tells the client the largest request it may send: a
	// larger one fails the stream (gRPC cannot skip a message), so the
	// client refuses it on its own.
	if err := stream.SendHeader(metadata.Pairs(MaxRequestBytesHeader, strconv.Itoa(v.s.opts.MaxRequestBytes))); err != nil {
		return err
	}
	appendCtx, cancelAppends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAppends()

	var (
		// slots holds a token per request received and not yet answered:
		// the receiver takes one before Recv, the sender returns it after
		// Send.
		slots   = make(chan struct{}, MaxStreamInFlight)
		answers = make(chan streamAnswer, MaxStreamInFlight)
		recvErr = make(chan error, 1)
		// work hands a request to an idle worker. Workers live as long as
		// the stream, so that their stacks, grown by the first append,
		// serve the next ones; there are at most as many as requests were
		// in flight at once.
		work = make(chan *goethev1.ProduceStreamRequest)

		mu       sync.Mutex // guards closed, work's closing and inflight's Adds
		closed   bool       // no request is started once set
		inflight sync.WaitGroup
	)
	// stopTaking makes the receiver start no more appends and lets idle
	// workers exit, then closes drained once every started append has
	// handed in its answer.
	drained := make(chan struct{})
	var stopOnce sync.Once
	stopTaking := func() {
		stopOnce.Do(func() {
			mu.Lock()
			closed = true
			close(work)
			mu.Unlock()
			go func() {
				inflight.Wait()
				close(drained)
			}()
		})
	}
	defer stopTaking()

	handle := func(req *goethev1.ProduceStreamRequest) {
		a := streamAnswer{id: req.GetRequestId()}
		if p := req.GetProduce(); p == nil {
			a.err = fmt.Errorf("%w: a ProduceStreamRequest needs a produce", errBadRequest)
		} else {
			a.res, a.err = v.produce(appendCtx, p)
		}
		answers <- a // never blocks: it has room for every request in flight
		inflight.Done()
	}
	worker := func(req *goethev1.ProduceStreamRequest) {
		for ok := true; ok; req, ok = <-work {
			handle(req)
		}
	}

	go func() {
		for {
			select {
			case slots <- struct{}{}:
			default:
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					recvErr <- ctx.Err()
					return
				}
			}
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				return
			}
			inflight.Add(1)
			select {
			case work <- req:
			default:
				go worker(req)
			}
			mu.Unlock()
		}
	}()

	// The response message and its two outcomes are reused: Send encodes
	// the message before it returns.
	var (
		resp   goethev1.ProduceStreamResponse
		result = &goethev1.ProduceStreamResponse_Result{}
		failed = &goethev1.ProduceStreamResponse_Error{}
	)
	send := func(a streamAnswer) error {
		resp.RequestId = a.id
		if a.err == nil {
			result.Result = a.res
			resp.Outcome = result
		} else {
			failed.Error = statusProto(a.err)
			resp.Outcome = failed
		}
		err := stream.Send(&resp)
		result.Result, failed.Error = nil, nil
		<-slots
		return err
	}

	stopping := func() bool { return errors.Is(context.Cause(ctx), errStopping) }
	var (
		ended  bool  // the stream's end is known: endErr
		endErr error // nil: OK
	)
	end := func(err error) {
		if !ended {
			ended, endErr = true, err
		}
		stopTaking()
	}
	done, received := ctx.Done(), (<-chan error)(recvErr)
	for {
		select {
		case a := <-answers:
			if err := send(a); err != nil {
				// The client is gone: nothing can be answered any more.
				cancelAppends()
				stopTaking()
				<-drained
				return err
			}
		case err := <-received:
			received = nil
			switch {
			case errors.Is(err, io.EOF):
				end(nil) // the client half-closed: answer the rest, then OK
			case stopping():
				end(errStopping) // the receiver saw Stop begin
			default:
				cancelAppends() // the client is gone
				end(err)
			}
		case <-done:
			done = nil
			if stopping() {
				end(errStopping) // graceful: finish and answer what was taken
			} else {
				cancelAppends()
				end(ctx.Err())
			}
		case <-drained:
			// Every started append has handed in its answer: send the rest.
			for {
				select {
				case a := <-answers:
					if err := send(a); err != nil {
						return err
					}
				default:
					return endErr
				}
			}
		}
	}
}

// produce is the unary Produce's path: validate, then Log.Append.
func (v *service) produce(ctx context.Context, req *goethev1.ProduceRequest) (*goethev1.ProduceResponse, error) {
	events, expect, err := v.validate(req, nil)
	if err != nil {
		return nil, err
	}
	r, err := v.log.Append(ctx, req.Topic, events, expect)
	if err != nil {
		return nil, err
	}
	return &goethev1.ProduceResponse{FirstId: r.FirstID, FirstSeq: r.FirstSeq, Count: uint32(r.Count)}, nil
}

// statusProto is the google.rpc.Status that the unary Produce would have
// returned for err (through toStatus), for a ProduceStreamResponse.
func statusProto(err error) *spb.Status {
	st, _ := status.FromError(toStatus(err)) // stream answers are not logged yet
	return st.Proto()
}
