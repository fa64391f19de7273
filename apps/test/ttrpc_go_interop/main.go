// ttrpc_go_interop: containerd's Go ttrpc (Debian's golang-github-containerd-ttrpc-dev 1.1.1)
// against coffer's C++ ttrpc (src/net/ttrpc), in both directions. Driven by
// apps/test/ttrpc_go_interop.sh; built in GOPATH mode against Debian's packaged sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o ttrpc-go main.go
//
// No protobuf code generation: the messages used are gogo's well-known types, whose wire bytes
// coincide with coffer.agent.v1 messages (HealthRequest = Empty; HealthResponse{string status = 1},
// ContainerStateRequest{string container_id = 1}, PullImageRequest{string image = 1} =
// StringValue; ReadOutputResponse{bytes data = 1} = BytesValue).
//
// Modes:
//
//	client SOCKET        checks against a running coffer-agent; one line per check, exit 1 on failure
//	server SOCKET        serves coffer.agent.v1.Agent (Health, ContainerState, WaitProcess,
//	                     ReadOutput; EchoMetadata) for `coffer agent-ctl` and
//	                     ttrpc_interop_client; logs what it saw on stdout
//	bench SOCKET N       N sequential Health calls against coffer-agent; prints p50/p90/p99
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const service = "coffer.agent.v1.Agent"

func dial(socket string) *ttrpc.Client {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-go: cannot connect to %s: %v\n", socket, err)
		os.Exit(2)
	}
	return ttrpc.NewClient(conn)
}

// ---------------------------------------------------------------------------------------------
// client mode

type checker struct {
	failed bool
	last   time.Time // when the previous check ended
}

func (c *checker) check(name string, err error) {
	took := time.Since(c.last).Round(time.Millisecond)
	c.last = time.Now()
	if err != nil {
		c.failed = true
		fmt.Printf("FAIL %s: %v (%v)\n", name, err, took)
		return
	}
	fmt.Printf("ok   %s (%v)\n", name, took)
}

// wantStatus: err must be a ttrpc status with this code and message.
func wantStatus(err error, code codes.Code, message string) error {
	if err == nil {
		return errors.New("the call succeeded")
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("not a status: %v", err)
	}
	if st.Code() != code || st.Message() != message {
		return fmt.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), code, message)
	}
	return nil
}

func health(ctx context.Context, c *ttrpc.Client) error {
	var resp types.StringValue
	if err := c.Call(ctx, service, "Health", &types.Empty{}, &resp); err != nil {
		return err
	}
	if resp.Value != "SERVING" {
		return fmt.Errorf("status %q", resp.Value)
	}
	return nil
}

// A "registry" that accepts TCP connections and never answers: a PullImage from it blocks (the
// agent's registry client waits for the TLS handshake). close() ends every connection, so the
// blocked pulls fail at once instead of at the agent's connect timeout.
type silentRegistry struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newSilentRegistry() (*silentRegistry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &silentRegistry{l: l}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, conn)
			r.mu.Unlock()
		}
	}()
	return r, nil
}

func (r *silentRegistry) image() string {
	return "docker://" + r.l.Addr().String() + "/app:v1"
}

func (r *silentRegistry) close() {
	r.l.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

// withTimeoutNano sends this timeout_nano whatever the context says.
func withTimeoutNano(nanos int64) ttrpc.ClientOpts {
	return ttrpc.WithUnaryClientInterceptor(func(ctx context.Context, req *ttrpc.Request,
		resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		req.TimeoutNano = nanos
		return invoke(ctx, req, resp)
	})
}

// serverDeadlineOnly: the Go client derives timeout_nano from the call's context as usual, but
// waits for the answer under a longer context of its own, so that the answer at the deadline is
// the server's (otherwise the client's own timer and the server's race).
func serverDeadlineOnly() ttrpc.ClientOpts {
	return ttrpc.WithUnaryClientInterceptor(func(_ context.Context, req *ttrpc.Request,
		resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return invoke(ctx, req, resp)
	})
}

func runClient(socket string) int {
	c := checker{last: time.Now()}
	bg := context.Background()
	client := dial(socket)
	defer client.Close()

	c.check("Health answers SERVING", health(bg, client))

	{
		var resp types.Empty
		err := client.Call(bg, service, "ContainerState",
			&types.StringValue{Value: "no-such-container"}, &resp)
		c.check("ContainerState of an unknown container is NOT_FOUND with the agent's message",
			wantStatus(err, codes.NotFound, "container_not_found: no container 'no-such-container'"))
	}
	{
		var resp types.Empty
		err := client.Call(bg, service, "NoSuchMethod", &types.Empty{}, &resp)
		c.check("an unknown method is UNIMPLEMENTED",
			wantStatus(err, codes.Unimplemented, "no method coffer.agent.v1.Agent/NoSuchMethod"))
		err = client.Call(bg, "coffer.other.v1.Other", "Health", &types.Empty{}, &resp)
		c.check("an unknown service is UNIMPLEMENTED",
			wantStatus(err, codes.Unimplemented, "no method coffer.other.v1.Other/Health"))
	}
	{
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		c.check("Health with a 10 s deadline (timeout_nano) answers SERVING", health(ctx, client))
		cancel()
		// A deadline beyond 2^63-1 ns from now: the Go client sends timeout_nano = MaxInt64.
		ctx, cancel = context.WithDeadline(bg, time.Unix(1<<40, 0))
		c.check("Health with a far deadline (timeout_nano = 2^63-1) answers SERVING",
			health(ctx, client))
		cancel()
	}
	{
		md := ttrpc.MD{}
		md.Set("containerd-namespace-ttrpc", "k8s.io")
		md.Append("x-coffer-test", "a", "b")
		c.check("Health with request metadata answers SERVING",
			health(ttrpc.WithMetadata(bg, md), client))
	}

	registry, err := newSilentRegistry()
	if err != nil {
		c.check("listen for the silent registry", err)
		return 1
	}
	// deadlineExceeded: the call blocked on the silent registry ended with the agent's
	// DEADLINE_EXCEEDED after about `want`.
	deadlineExceeded := func(err error, elapsed, want time.Duration) error {
		if err := wantStatus(err, codes.DeadlineExceeded, "the call's deadline passed"); err != nil {
			return err
		}
		if elapsed < want-50*time.Millisecond || elapsed > want+3*time.Second {
			return fmt.Errorf("answered after %v, for a deadline of %v", elapsed, want)
		}
		return nil
	}
	{
		// The context's deadline goes out as timeout_nano; the agent answers at that deadline.
		c2 := ttrpc.NewClient(mustDial(socket), serverDeadlineOnly())
		ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
		start := time.Now()
		var resp types.Empty
		err := c2.Call(ctx, service, "PullImage", &types.StringValue{Value: registry.image()}, &resp)
		elapsed := time.Since(start)
		cancel()
		c2.Close()
		c.check("a PullImage blocked on a silent registry: the agent answers DEADLINE_EXCEEDED at the context's deadline (500 ms)",
			deadlineExceeded(err, elapsed, 500*time.Millisecond))
	}
	{
		// An already expired deadline: the Go client sends a negative timeout_nano when the
		// context expires between its deadline check and the send; containerd's server then
		// runs the call with an expired context. coffer must not run it without a deadline.
		c3 := ttrpc.NewClient(mustDial(socket), withTimeoutNano(-1))
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		start := time.Now()
		var resp types.Empty
		err := c3.Call(ctx, service, "PullImage", &types.StringValue{Value: registry.image()}, &resp)
		elapsed := time.Since(start)
		cancel()
		c3.Close()
		c.check("a negative timeout_nano (expired deadline) is DEADLINE_EXCEEDED at once",
			deadlineExceeded(err, elapsed, 0))
	}
	{
		// A far deadline (timeout_nano = 2^63-1) is no deadline: the blocked pull is still
		// running a second later, when this client goes away.
		c4 := ttrpc.NewClient(mustDial(socket))
		ctx, cancel := context.WithDeadline(bg, time.Unix(1<<40, 0))
		timer := time.AfterFunc(time.Second, func() { c4.Close() })
		var resp types.Empty
		err := c4.Call(ctx, service, "PullImage", &types.StringValue{Value: registry.image()}, &resp)
		timer.Stop()
		cancel()
		if !errors.Is(err, ttrpc.ErrClosed) {
			err = fmt.Errorf("want the call still running when the client closed, got %v", err)
		} else {
			err = nil
		}
		c.check("a far deadline (timeout_nano = 2^63-1) does not end a blocked call", err)
	}
	registry.close()

	{
		// 16 calls in flight together on one connection, each answered on its own stream.
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if i%2 == 0 {
					errs[i] = health(bg, client)
					return
				}
				id := fmt.Sprintf("c-%02d", i)
				var resp types.Empty
				err := client.Call(bg, service, "ContainerState", &types.StringValue{Value: id}, &resp)
				errs[i] = wantStatus(err, codes.NotFound, "container_not_found: no container '"+id+"'")
			}(i)
		}
		wg.Wait()
		var all []string
		for i, err := range errs {
			if err != nil {
				all = append(all, fmt.Sprintf("call %d: %v", i, err))
			}
		}
		var err error
		if len(all) > 0 {
			err = errors.New(strings.Join(all, "; "))
		}
		c.check("16 concurrent calls on one connection each get their own answer", err)
	}
	{
		// over the 4 MiB limit: skipped by the agent without losing the stream, and answered
		var resp types.Empty
		big := strings.Repeat("x", 5<<20)
		err := client.Call(bg, service, "ContainerState", &types.StringValue{Value: big}, &resp)
		var st *status.Status
		var ok bool
		if st, ok = status.FromError(err); !ok || st.Code() != codes.ResourceExhausted {
			err = fmt.Errorf("want RESOURCE_EXHAUSTED, got %v", err)
		} else {
			err = nil
		}
		c.check("a 5 MiB request is RESOURCE_EXHAUSTED", err)
	}
	c.check("the connection still works", health(bg, client))

	if c.failed {
		return 1
	}
	return 0
}

func mustDial(socket string) net.Conn {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-go: cannot connect to %s: %v\n", socket, err)
		os.Exit(2)
	}
	return conn
}

// ---------------------------------------------------------------------------------------------
// server mode

// The ReadOutput answer: 1 MiB of a fixed pattern (several reads and writes per frame).
func outputPayload() []byte {
	p := make([]byte, 1<<20)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func runServer(socket string) int {
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-go: listen %s: %v\n", socket, err)
		return 2
	}
	server, err := ttrpc.NewServer()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-go: %v\n", err)
		return 2
	}
	var logMu sync.Mutex
	logf := func(format string, args ...interface{}) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	payload := outputPayload()
	server.Register(service, map[string]ttrpc.Method{
		"Health": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req types.Empty
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			dl, ok := ctx.Deadline()
			logf("Health deadline=%v", ok && time.Until(dl) > 0)
			return &types.StringValue{Value: "SERVING"}, nil
		},
		"ContainerState": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req types.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			// "slow-MS-...": answered after MS milliseconds (out of order, for calls in flight)
			var ms int
			if _, err := fmt.Sscanf(req.Value, "slow-%d-", &ms); err == nil && ms > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			} else {
				logf("ContainerState %q", req.Value)
			}
			return nil, status.Errorf(codes.NotFound, "container_not_found: no container '%s'", req.Value)
		},
		// Not an agent method: answers the request's metadata as "key=value;..." (sorted).
		"EchoMetadata": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			md, _ := ttrpc.GetMetadata(ctx)
			var pairs []string
			for k, values := range md {
				for _, v := range values {
					pairs = append(pairs, k+"="+v)
				}
			}
			sort.Strings(pairs)
			return &types.StringValue{Value: strings.Join(pairs, ";")}, nil
		},
		// Blocks until the call's context ends (the deadline the client sent as timeout_nano).
		"WaitProcess": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req types.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			dl, ok := ctx.Deadline()
			if !ok {
				logf("WaitProcess %q without a deadline", req.Value)
			} else {
				logf("WaitProcess %q deadline_ms=%d", req.Value, time.Until(dl).Milliseconds())
			}
			<-ctx.Done()
			logf("WaitProcess %q ended: %v", req.Value, ctx.Err())
			return nil, ctx.Err()
		},
		"ReadOutput": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req types.StringValue // container_id = 1; the other fields are skipped
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			logf("ReadOutput %q", req.Value)
			if req.Value == "big" { // over the 4 MiB limit of coffer's client
				return &types.BytesValue{Value: make([]byte, 5<<20)}, nil
			}
			return &types.BytesValue{Value: payload}, nil
		},
	})
	fmt.Printf("read-output sha256 %x\n", sha256.Sum256(payload))
	fmt.Printf("serving on %s\n", socket)
	os.Stdout.Sync()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		server.Close()
	}()
	if err := server.Serve(context.Background(), l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "ttrpc-go: serve: %v\n", err)
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------------------------
// bench mode

func runBench(socket string, n int) int {
	client := dial(socket)
	defer client.Close()
	bg := context.Background()
	for i := 0; i < 50; i++ { // warm-up
		if err := health(bg, client); err != nil {
			fmt.Fprintf(os.Stderr, "ttrpc-go: %v\n", err)
			return 1
		}
	}
	samples := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := health(bg, client); err != nil {
			fmt.Fprintf(os.Stderr, "ttrpc-go: %v\n", err)
			return 1
		}
		samples = append(samples, time.Since(start))
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(n))) - 1
		if i < 0 {
			i = 0
		}
		return float64(samples[i].Nanoseconds()) / 1000
	}
	fmt.Printf("go-client Health x%d: p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n", n,
		q(0.50), q(0.90), q(0.99), q(1.0))
	return 0
}

func main() {
	usage := "usage: ttrpc-go client SOCKET | server SOCKET | bench SOCKET N"
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "client":
		os.Exit(runClient(os.Args[2]))
	case "server":
		os.Exit(runServer(os.Args[2]))
	case "bench":
		n := 2000
		if len(os.Args) > 3 {
			if _, err := fmt.Sscanf(os.Args[3], "%d", &n); err != nil || n <= 0 {
				fmt.Fprintln(os.Stderr, usage)
				os.Exit(2)
			}
		}
		os.Exit(runBench(os.Args[2], n))
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
