// Command goshop is a small Go web shop that behaves like the services Weft's users run: its
// checkout handler logs with zap, its payment handler logs with zerolog, both as JSON lines
// carrying trace_id and span_id, and both are traced with the OpenTelemetry Go SDK (otelhttp
// on both sides of the HTTP call, spans exported over OTLP/gRPC).
//
// The JSON lines are not written to stdout but to files in the layout and format the kubelet
// gives container logs (CRI: "<RFC3339Nano time> stdout F <line>", and "P" for the leading
// parts of a line longer than -cri-max-line), one file per container:
//
//	<pods-dir>/shop_goshop-7d4b9_<uid>/checkout/0.log   (zap)
//	<pods-dir>/shop_goshop-7d4b9_<uid>/payment/0.log    (zerolog)
//
// Rotation: after -rotate-after requests (and on SIGUSR1) each file is renamed to
// 0.log.<timestamp> and a new 0.log is created, as the kubelet rotates.
//
// The run drives -requests checkouts against itself, a share failing and a share slow, and
// writes a manifest (JSON) of every trace with its category and the messages it logged, and
// of the lines logged outside any trace, for the tests to compare with what the backends hold.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// criFile writes one JSON line per Write call as the kubelet stores container output.
type criFile struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	maxLine int
}

func openCRI(path string, maxLine int) (*criFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &criFile{path: path, f: f, maxLine: maxLine}, nil
}

// Write takes one log line (zap and zerolog write each entry whole, ending in a newline).
func (c *criFile) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for {
		now := time.Now().UTC().Format(time.RFC3339Nano)
		if len(line) <= c.maxLine {
			fmt.Fprintf(&b, "%s stdout F %s\n", now, line)
			break
		}
		fmt.Fprintf(&b, "%s stdout P %s\n", now, line[:c.maxLine])
		line = line[c.maxLine:]
	}
	if _, err := io.WriteString(c.f, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Rotate renames the file away and starts a new one at the same path.
func (c *criFile) Rotate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.f.Close(); err != nil {
		return err
	}
	rotated := fmt.Sprintf("%s.%s", c.path, time.Now().UTC().Format("20060102-150405.000000000"))
	if err := os.Rename(c.path, rotated); err != nil {
		return err
	}
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c.f = f
	return nil
}

func (c *criFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}

// traceRecord is one checkout as the manifest reports it.
type traceRecord struct {
	TraceID  string   `json:"trace_id"`
	Category string   `json:"category"`
	Logs     []string `json:"logs"`
}

type manifest struct {
	mu         sync.Mutex
	Traces     []*traceRecord `json:"traces"`
	OrphanLogs []string       `json:"orphan_logs"`
	byTrace    map[string]*traceRecord
}

func (m *manifest) logged(traceID, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if traceID == "" {
		m.OrphanLogs = append(m.OrphanLogs, msg)
		return
	}
	t := m.byTrace[traceID]
	if t == nil {
		t = &traceRecord{TraceID: traceID}
		m.byTrace[traceID] = t
		m.Traces = append(m.Traces, t)
	}
	t.Logs = append(t.Logs, msg)
}

func (m *manifest) category(traceID, category string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.byTrace[traceID]; t != nil {
		t.Category = category
	}
}

type shop struct {
	zap      *zap.Logger
	zerolog  zerolog.Logger
	manifest *manifest
	client   *http.Client
	base     string
	slow     time.Duration
	padding  string
}

func ids(ctx context.Context) (string, string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// zapLog logs msg at level with the span's ids, and records it in the manifest.
func (s *shop) zapLog(ctx context.Context, level zapcore.Level, msg string, fields ...zap.Field) {
	traceID, spanID := ids(ctx)
	if traceID != "" {
		fields = append(fields, zap.String("trace_id", traceID), zap.String("span_id", spanID))
	}
	if ce := s.zap.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
	s.manifest.logged(traceID, msg)
}

func (s *shop) zerologEvent(ctx context.Context, e *zerolog.Event, msg string) {
	traceID, spanID := ids(ctx)
	if traceID != "" {
		e = e.Str("trace_id", traceID).Str("span_id", spanID)
	}
	e.Msg(msg)
	s.manifest.logged(traceID, msg)
}

// checkout is the front handler (zap): a stock query, then a payment call to /pay.
func (s *shop) checkout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n := r.URL.Query().Get("n")
	mode := r.URL.Query().Get("mode")
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("order.no", "A-"+n))
	fields := []zap.Field{zap.String("order_no", "A-"+n)}
	if r.URL.Query().Get("big") == "1" {
		// A line longer than the CRI line limit: the kubelet splits it into P parts.
		fields = append(fields, zap.String("cart", s.padding))
	}
	s.zapLog(ctx, zapcore.InfoLevel, "checkout started #"+n, fields...)

	_, stock := otel.Tracer("goshop/checkout").Start(ctx, "SELECT stock")
	if mode == "slow" {
		time.Sleep(s.slow)
		s.zapLog(trace.ContextWithSpan(ctx, stock), zapcore.WarnLevel, "stock query slow #"+n)
	}
	stock.End()

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/pay?n="+n+"&mode="+mode, nil)
	resp, err := s.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		span.SetStatus(codes.Error, "payment failed")
		s.zapLog(ctx, zapcore.ErrorLevel, "payment declined #"+n)
		http.Error(w, "payment declined", http.StatusPaymentRequired)
		return
	}
	s.zapLog(ctx, zapcore.InfoLevel, "checkout done #"+n)
	fmt.Fprintln(w, "ok")
}

// pay is the payment handler (zerolog).
func (s *shop) pay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n := r.URL.Query().Get("n")
	s.zerologEvent(ctx, s.zerolog.Info().Str("order_no", "A-"+n), "charging card #"+n)
	if r.URL.Query().Get("mode") == "error" {
		trace.SpanFromContext(ctx).SetStatus(codes.Error, "card declined")
		s.zerologEvent(ctx, s.zerolog.Error().Str("reason", "insufficient funds"), "card declined #"+n)
		http.Error(w, "declined", http.StatusBadGateway)
		return
	}
	fmt.Fprintln(w, "paid")
}

func main() {
	var (
		endpoint    = flag.String("otlp", "127.0.0.1:4317", "OTLP/gRPC endpoint for spans (host:port)")
		podsDir     = flag.String("pods-dir", "/var/log/pods", "where the container log files go")
		podUID      = flag.String("pod-uid", "0a1b2c3d-0000-4000-8000-000000000001", "the pod uid in the log path")
		requests    = flag.Int("requests", 60, "checkouts to run")
		errorShare  = flag.Float64("error-share", 0.1, "share of checkouts whose payment fails")
		slowShare   = flag.Float64("slow-share", 0.1, "share of checkouts with a slow stock query")
		bigShare    = flag.Float64("big-share", 0.05, "share of checkouts logging a line longer than -cri-max-line")
		slowMs      = flag.Int("slow-ms", 300, "the slow stock query's delay")
		seed        = flag.Int64("seed", 1, "random seed (which checkouts fail or are slow)")
		maxLine     = flag.Int("cri-max-line", 16384, "longer lines are split into CRI partial (P) lines")
		rotateAfter = flag.Int("rotate-after", 0, "rotate both log files after this many checkouts (0: never; SIGUSR1 also rotates)")
		heartbeats  = flag.Int("heartbeats", 3, "log lines outside any trace")
		out         = flag.String("manifest", "", "write the manifest (JSON) here")
	)
	flag.Parse()
	ctx := context.Background()

	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(*endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		log.Fatalf("otlp exporter: %v", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "goshop"))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(200*time.Millisecond)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	dir := filepath.Join(*podsDir, "shop_goshop-7d4b9_"+*podUID)
	checkoutFile, err := openCRI(filepath.Join(dir, "checkout", "0.log"), *maxLine)
	if err != nil {
		log.Fatalf("checkout log: %v", err)
	}
	paymentFile, err := openCRI(filepath.Join(dir, "payment", "0.log"), *maxLine)
	if err != nil {
		log.Fatalf("payment log: %v", err)
	}
	rotate := func() {
		for _, f := range []*criFile{checkoutFile, paymentFile} {
			if err := f.Rotate(); err != nil {
				log.Printf("rotate %s: %v", f.path, err)
			}
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR1)
	go func() {
		for range signals {
			rotate()
		}
	}()

	// zap's production JSON: {"level":"info","ts":<float seconds>,"caller":"…","msg":"…",…}
	encoder := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	zapLogger := zap.New(zapcore.NewCore(encoder, zapcore.AddSync(checkoutFile), zapcore.DebugLevel), zap.AddCaller(), zap.AddCallerSkip(1))
	// zerolog's JSON: {"level":"info","time":"<RFC 3339>","message":"…","caller":"…",…}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zl := zerolog.New(paymentFile).With().Timestamp().Caller().Logger()

	m := &manifest{byTrace: map[string]*traceRecord{}, Traces: []*traceRecord{}, OrphanLogs: []string{}}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	s := &shop{
		zap:      zapLogger,
		zerolog:  zl,
		manifest: m,
		client:   &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport), Timeout: 10 * time.Second},
		base:     "http://" + listener.Addr().String(),
		slow:     time.Duration(*slowMs) * time.Millisecond,
		padding:  strings.Repeat("item-", (*maxLine*2)/5),
	}
	mux := http.NewServeMux()
	mux.Handle("/pay", otelhttp.NewHandler(http.HandlerFunc(s.pay), "POST /pay"))
	server := &http.Server{Handler: mux}
	go func() { _ = server.Serve(listener) }()

	s.zapLog(ctx, zapcore.InfoLevel, "goshop starting", zap.String("addr", s.base))
	rng := rand.New(rand.NewSource(*seed))
	tracer := otel.Tracer("goshop/frontend")
	for i := 0; i < *requests; i++ {
		if *rotateAfter > 0 && i == *rotateAfter {
			rotate()
		}
		if *heartbeats > 0 && i%(max(*requests / *heartbeats, 1)) == 0 {
			s.zerologEvent(ctx, zl.Info().Int("done", i), fmt.Sprintf("heartbeat %d", i))
		}
		category, mode := "ok", ""
		switch p := rng.Float64(); {
		case p < *errorShare:
			category, mode = "error", "error"
		case p < *errorShare+*slowShare:
			category, mode = "slow", "slow"
		}
		big := 0
		if rng.Float64() < *bigShare {
			big = 1
		}
		// The root span is the shop's own entry point, as a gateway's server span would be.
		rctx, root := tracer.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
		traceID, _ := ids(rctx)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("%s/checkout?n=%d&mode=%s&big=%d", s.base, i, mode, big), nil)
		rec := &statusRecorder{header: http.Header{}}
		s.checkout(rec, req)
		if rec.status >= 400 {
			root.SetStatus(codes.Error, "checkout failed")
		}
		root.End()
		m.category(traceID, category)
	}
	s.zapLog(ctx, zapcore.InfoLevel, "goshop done")
	_ = zapLogger.Sync()

	shutdown, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := tp.Shutdown(shutdown); err != nil {
		log.Printf("tracer shutdown: %v", err)
	}
	_ = server.Shutdown(shutdown)
	checkoutFile.Close()
	paymentFile.Close()
	if *out != "" {
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			log.Fatalf("manifest: %v", err)
		}
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			log.Fatalf("manifest: %v", err)
		}
	}
	fmt.Printf("goshop: %d checkouts, %d traces, %d lines outside traces\n", *requests, len(m.Traces), len(m.OrphanLogs))
}

// statusRecorder is the response writer of the shop calling its own checkout handler in
// the root span's context (so the root span is the trace's first span).
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(p), nil
}
func (r *statusRecorder) WriteHeader(code int) { r.status = code }
