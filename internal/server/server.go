// Package server assembles Updraft: it opens the store and the blob store from
// their URLs, builds the service, bootstraps the first tenant, mounts every
// HTTP front-end on one listener and runs the background parts, and shuts it
// all down in order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/api/aliyuniot"
	devapi "github.com/updraft-ota/updraft/internal/api/device"
	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/api/management"
	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/blob/blobstore"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/console"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/rollout"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/postgres"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

// Server is a running (or ready to run) Updraft.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	store     store.Store
	blobs     blob.Store
	svc       *service.Service
	publicURL string

	ln      net.Listener
	mux     *http.ServeMux
	http    *http.Server
	metrics *prometheus.Registry

	// runCtx lives from New to Shutdown: background parts (engine, broker)
	// run under it.
	runCtx    context.Context
	cancelRun context.CancelFunc
	// stops are called in reverse order on Shutdown (and when New fails).
	stops []func(context.Context) error

	mqttAddr  string // the embedded MQTT broker's address ("" without one)
	mqttsAddr string // its MQTT over TLS address ("" without one)
	// deviceMQTTS is where devices connect over TLS (ssl://host:port).
	deviceMQTTS string
	// tls is the TLS material (--tls-cert/--tls-key or --tls auto); nil
	// when HTTP and MQTT are plain.
	tls *config.ServerTLS
	// deviceMQTT is where devices connect, for credentials.json, /healthz and
	// the log: the embedded broker as reached locally, or the external
	// broker's host:port; "" with MQTT off.
	deviceMQTT string

	pprofLn    net.Listener // --pprof (pprof.go); nil when off
	pprofServe func()

	creds   *Credentials // set when this start created the first tenant
	started bool
	serveCh chan error
	once    sync.Once
	stopErr error
}

// New opens everything cfg names and prepares the HTTP listener (bound, so
// that --http :0 has a real port from here on). It does not serve yet: call
// Start. On error, whatever was opened is closed again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data %s: cannot create the data directory: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), metrics: newRegistry(), serveCh: make(chan error, 1)}
	s.runCtx, s.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	// First of all: one server per data directory.
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.onShutdown(func(context.Context) error { release(); return nil }) // runs last

	// TLS material before any listener: a bad or unreadable certificate must
	// fail the start before it binds or writes anything.
	if s.tls, err = cfg.LoadServerTLS(time.Now()); err != nil {
		return nil, err
	}
	if s.tls != nil && s.tls.CAFile != "" {
		s.printCA()
	}

	// Bound first: the derived public URL and credentials.json need the real
	// port, and a start that cannot get its ports must fail before it writes
	// anything (the first tenant's key is printed only once).
	s.ln, err = listen(log, "http", cfg.HTTPAddr, config.Default().HTTPAddr)
	if err != nil {
		return nil, err
	}
	s.onShutdown(func(context.Context) error {
		if !s.started {
			return s.ln.Close()
		}
		return nil
	})
	if err := s.listenPprof(); err != nil {
		return nil, err
	}
	var mqttLn, mqttsLn net.Listener
	if cfg.PlainMQTT() {
		if mqttLn, err = listen(log, "mqtt", cfg.MQTTAddr, config.Default().MQTTAddr); err != nil {
			return nil, err
		}
		s.onShutdown(func(context.Context) error { _ = mqttLn.Close(); return nil }) // the broker may have closed it already
	}
	if addr := cfg.MQTTSListenAddr(); addr != "" {
		if mqttsLn, err = listen(log, "mqtts", addr, config.DefaultMQTTSAddr); err != nil {
			return nil, err
		}
		s.onShutdown(func(context.Context) error { _ = mqttsLn.Close(); return nil })
		s.deviceMQTTS = "ssl://" + localHostPort(mqttsLn.Addr())
	}
	switch {
	case cfg.MQTTBroker != "":
		s.deviceMQTT = brokerHostPort(cfg.MQTTBroker)
	case mqttLn != nil:
		s.deviceMQTT = localHostPort(mqttLn.Addr())
	case mqttsLn != nil:
		s.deviceMQTT = s.deviceMQTTS
	}
	s.publicURL = cfg.PublicURL
	if s.publicURL == "" {
		s.publicURL = s.URL()
		log.Info("download links use the local address; set --public-url for devices on other machines", "public_url", s.publicURL)
	}

	box, err := cfg.LoadSecretBox()
	if err != nil {
		return nil, err
	}
	s.store, err = OpenStore(ctx, cfg.DBURL, box)
	if err != nil {
		return nil, err
	}
	s.onShutdown(func(context.Context) error { return s.store.Close() })
	if err := s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating the database (--db): %w", err)
	}
	// Rows written in clear by a version before sealing (or restored from
	// such a backup) are sealed on every start: idempotent and cheap when
	// there are none.
	if n, err := s.store.SealSecrets(ctx); err != nil {
		return nil, fmt.Errorf("encrypting the secrets stored in clear (--db): %w", err)
	} else if n > 0 {
		log.Info("encrypted secrets that were stored in clear", "rows", n)
	}
	if err := checkSecretKey(ctx, s.store); err != nil {
		return nil, err
	}

	var blobHandler http.Handler
	var bucket string
	s.blobs, bucket, blobHandler, err = s.openBlobs(ctx)
	if err != nil {
		return nil, err
	}
	s.onShutdown(func(context.Context) error { return s.blobs.Close() })

	finished := tasksFinishedCounter()
	maxUploads, maxTenantUploads, err := cfg.UploadLimits()
	if err != nil {
		return nil, err
	}
	s.svc = service.New(s.store, s.blobs, nil, nil, log, service.Options{DefaultBucket: bucket,
		MaxUploads: maxUploads, MaxUploadsPerTenant: maxTenantUploads,
		TasksFinished: func(state ota.TaskState, reason ota.Reason, n int64) {
			finished.WithLabelValues(string(state), string(reason)).Add(float64(n))
		}})
	s.metrics.MustRegister(finished, newFleetCollector(s.svc, log))
	// Runs after the device front-ends have closed (stops run in reverse)
	// and before the store closes: no percentage a device was told was
	// taken is lost to a clean shutdown.
	s.onShutdown(s.svc.FlushProgress)

	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}

	// devices: the MQTT front-end (embedded broker or external broker) is the notifier; api/device is mounted in routes.
	// Device dialects on MQTT, tried in order on CONNECT: native, then the vendors'.
	// EnOS and Alibaba share the CONNECT shape ("{id}|securemode=…|", "{dk}&{pk}"):
	// EnOS, which answers ErrNotMine for products on other protocols, goes first.
	dialects := []mqtt.Dialect{mqtt.NewNative(s.svc, 0, nil), huaweiiotda.NewDevices(s.svc, nil), enos.NewDevices(s.svc), mqtt.NewAlink(s.svc, nil)}
	switch {
	case cfg.MQTTBroker != "":
		ext, err := mqtt.NewExternal(s.svc, mqtt.ExternalOptions{URL: cfg.MQTTBroker, Logger: log, Dialects: dialects, Registerer: s.metrics,
			Slots: s.svc})
		if err != nil {
			return nil, err
		}
		s.svc.SetNotifier(ext)
		s.onShutdown(func(context.Context) error { return ext.Close() })
	case cfg.EmbeddedMQTT():
		opts := mqtt.BrokerOptions{Listener: mqttLn, Logger: log, Dialects: dialects, Registerer: s.metrics}
		if mqttsLn != nil {
			opts.TLSListener = tls.NewListener(mqttsLn, s.tls.MQTT)
		}
		broker, err := mqtt.NewBroker(s.svc, opts)
		if err != nil {
			return nil, err
		}
		if mqttLn != nil {
			s.mqttAddr = mqttLn.Addr().String()
		}
		if mqttsLn != nil {
			s.mqttsAddr = mqttsLn.Addr().String()
			if s.tls.ClientCAs == nil {
				log.Info("MQTT over TLS accepts no device certificates: devices of products with auth x509 cannot connect until --tls-client-ca names their CA")
			}
		}
		s.svc.SetNotifier(broker)
		s.onShutdown(func(context.Context) error { return broker.Close() })
	}

	// rollout engine: started after the notifier is set, so its first tick
	// can already reach devices.
	eng, err := rollout.New(s.svc, rollout.Options{Interval: cfg.RolloutInterval, Log: log, Registerer: s.metrics})
	if err != nil {
		return nil, err
	}
	eng.Start(s.runCtx)
	s.svc.SetEngineWake(eng.Wake)
	s.onShutdown(func(context.Context) error { eng.Stop(); return nil })

	limits, err := cfg.RateLimits()
	if err != nil {
		return nil, err
	}
	throttle := httpx.NewThrottle(httpx.RateLimits{PerKey: limits.PerKey, PerTenant: limits.PerTenant, PerIP: limits.PerIP, PerDevice: limits.PerDevice})
	s.routes(blobHandler)
	s.http = &http.Server{
		// Bodies must keep moving (httpx.Pace): headers have
		// ReadHeaderTimeout, bodies a minimum rate, so slow clients cannot
		// hold connections; no ReadTimeout/WriteTimeout, which would cut
		// large uploads, downloads and the console's event streams.
		Handler:           s.middleware(httpx.Paced(httpx.DefaultPace, httpx.Throttled(throttle, s.mux))),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if s.tls != nil {
		s.http.TLSConfig = s.tls.HTTP
	}
	return s, nil
}

// routes mounts every HTTP front-end on s.mux.
func (s *Server) routes(blobHandler http.Handler) {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	if blobHandler != nil {
		s.mux.Handle("/blob/", blobHandler)
	}
	s.mux.Handle(management.Prefix+"/", management.New(s.svc, management.Options{Log: s.log}))
	// Polling devices are answered from this replica's memory when nothing
	// changed (service.DeviceView).
	s.mux.Handle(devapi.Prefix+"/", devapi.New(service.NewDeviceView(s.svc, service.DeviceViewOptions{}), devapi.Options{Log: s.log}))
	// dialects: mount each vendor dialect's handler on s.mux at its own paths here.
	huaweiiotda.New(s.svc, huaweiiotda.Options{Log: s.log}).Register(s.mux)
	// Alibaba IoT RPC API: POST / and the OSS-style upload; GET / goes to it
	// through the console when the console owns the root path.
	aliyun := aliyuniot.New(s.svc, aliyuniot.Options{Log: s.log})
	aliyun.Register(s.mux)
	enos.New(s.svc, enos.Options{Log: s.log}).Register(s.mux)
	// web console at / (--console); it leaves requests to / that carry an
	// Action parameter to console.Options.RootAPI (the Alibaba RPC API).
	if s.cfg.ConsoleEnabled() {
		console.New(s.svc, console.Options{Log: s.log, RootAPI: aliyun.Handler(), IsRootAPICall: aliyuniot.IsCall}).Register(s.mux)
	} else {
		s.mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !aliyuniot.IsCall(r) {
				http.NotFound(w, r)
				return
			}
			aliyun.Handler().ServeHTTP(w, r)
		}))
	}
}

// openBlobs opens the blob store named by --blob.
func (s *Server) openBlobs(ctx context.Context) (blob.Store, string, http.Handler, error) {
	opts := blobstore.Options{DataDir: s.cfg.DataDir, PublicURL: s.publicURL}
	if s.cfg.SigningKey != "" || isFileURL(s.cfg.BlobURL) {
		key, err := s.cfg.LoadSigningKey()
		if err != nil {
			return nil, "", nil, err
		}
		opts.SigningKey = key
	}
	b, bucket, h, err := blobstore.Open(ctx, s.cfg.BlobURL, opts)
	if err != nil {
		return nil, "", nil, fmt.Errorf("opening the blob store (--blob %s): %w", config.Redact(s.cfg.BlobURL), err)
	}
	return b, bucket, h, nil
}

func isFileURL(u string) bool { return len(u) >= 5 && u[:5] == "file:" }

// OpenStore opens (without migrating) the store a --db URL names:
// sqlite:PATH or postgres://… (postgresql:// too); box seals the secrets
// (config.LoadSecretBox).
func OpenStore(ctx context.Context, dbURL string, box *secrets.Box) (store.Store, error) {
	switch config.DBScheme(dbURL) {
	case "sqlite":
		path := config.SQLitePath(dbURL)
		if dir := filepath.Dir(path); dir != "" && path != ":memory:" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("--db %s: cannot create the database directory: %w", config.Redact(dbURL), err)
			}
		}
		st, err := sqlite.Open(ctx, path, store.Options{Secrets: box})
		if err != nil {
			return nil, fmt.Errorf("opening the SQLite database (--db %s): %w", config.Redact(dbURL), err)
		}
		return st, nil
	case "postgres":
		st, err := postgres.Open(ctx, dbURL, store.Options{Secrets: box})
		if err != nil {
			return nil, fmt.Errorf("connecting to PostgreSQL (--db): %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("--db %q: use sqlite:PATH or postgres://user:password@host:5432/dbname", config.Redact(dbURL))
}

// localURL is how a process on this machine reaches addr over scheme.
func localURL(scheme string, addr net.Addr) string { return scheme + "://" + localHostPort(addr) }

// brokerHostPort is the external broker's host:port for devices: the
// server's own credentials and options in the URL are not theirs.
func brokerHostPort(raw string) string {
	if !strings.Contains(raw, "://") {
		raw = "mqtt://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
		return "ssl://" + u.Host
	case "ws", "wss":
		return u.Scheme + "://" + u.Host + u.Path
	}
	return u.Host
}

// localHostPort is how a process on this machine reaches addr (a wildcard
// listen address becomes 127.0.0.1).
func localHostPort(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() && tcp.IP != nil {
		host = tcp.IP.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// onShutdown registers fn to run on Shutdown, after HTTP has drained, in
// reverse order of registration.
func (s *Server) onShutdown(fn func(context.Context) error) { s.stops = append(s.stops, fn) }

// Start serves HTTP on the listener New bound. Serving errors arrive on Err.
func (s *Server) Start() error {
	if s.started {
		return errors.New("server already started")
	}
	s.started = true
	if s.pprofServe != nil {
		go s.pprofServe()
		s.log.Info("pprof serving", "addr", s.PprofAddr())
	}
	go func() {
		var err error
		if s.tls != nil {
			// ServeTLS uses s.http.TLSConfig (HTTP/2 included) on the
			// listener New bound.
			err = s.http.ServeTLS(s.ln, "", "")
		} else {
			err = s.http.Serve(s.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveCh <- err
		close(s.serveCh)
	}()
	s.log.Info("updraft serving", "http", s.Addr(), "url", s.URL(), "mqtt", s.deviceMQTT, "mqtts", s.deviceMQTTS, "public_url", s.publicURL,
		"db", config.Redact(s.cfg.DBURL), "blob", config.Redact(s.cfg.BlobURL), "data", s.cfg.DataDir)
	return nil
}

// Err delivers the HTTP server's exit: nil after Shutdown, an error if it
// stopped by itself.
func (s *Server) Err() <-chan error { return s.serveCh }

// Shutdown stops accepting requests, waits for those in flight (until ctx
// ends), then stops the background parts and closes the stores. It is safe
// to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		var errs []error
		if s.http != nil && s.started {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("draining HTTP: %w", err))
				_ = s.http.Close()
			}
		}
		s.cancelRun()
		for i := len(s.stops) - 1; i >= 0; i-- {
			if err := s.stops[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
		if s.stopErr != nil {
			s.log.Error("shutdown", "err", s.stopErr)
		} else if s.started {
			s.log.Info("updraft stopped")
		}
	})
	return s.stopErr
}

// Addr is the address HTTP listens on (the real port when --http ended in :0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// MQTTAddr is the address the embedded MQTT broker listens on (the real
// port when --mqtt ended in :0); "" when it does not run.
func (s *Server) MQTTAddr() string { return s.mqttAddr }

// MQTTSAddr is the address the embedded broker serves MQTT over TLS on; ""
// when it does not.
func (s *Server) MQTTSAddr() string { return s.mqttsAddr }

// CAFile is the auto CA certificate (--tls auto) devices and clients trust;
// "" otherwise.
func (s *Server) CAFile() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.CAFile
}

// URL is how a process on this machine reaches the HTTP listener (https with
// TLS on).
func (s *Server) URL() string {
	if s.tls != nil {
		return localURL("https", s.ln.Addr())
	}
	return localURL("http", s.ln.Addr())
}

// PublicURL is the base of download links.
func (s *Server) PublicURL() string { return s.publicURL }

// Service is the server's use-case layer (for in-process tests and tools).
func (s *Server) Service() *service.Service { return s.svc }

// Store is the server's store (for in-process tests and tools).
func (s *Server) Store() store.Store { return s.store }

// Config is the completed configuration the server runs with.
func (s *Server) Config() config.Config { return s.cfg }

// Metrics is the registry /metrics serves; background parts add their
// collectors to it.
func (s *Server) Metrics() prometheus.Registerer { return s.metrics }

// Handler is the whole HTTP handler (middleware included).
func (s *Server) Handler() http.Handler { return s.http.Handler }

// RunContext is canceled when the server shuts down.
func (s *Server) RunContext() context.Context { return s.runCtx }

// listen binds addr for the flag. Only for the built-in default address, a
// port already in use falls back to the next free one (at most 10 above) with
// a warning, so that `updraft serve` with no flags starts on a machine that
// already runs, say, a Mosquitto on 1883; an address the operator chose is
// never changed: its conflict is an error naming the flag.
func listen(log *slog.Logger, flag, addr, defaultAddr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if addr != defaultAddr || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, config.ListenError(flag, addr, err)
	}
	host, port, perr := net.SplitHostPort(addr)
	p, aerr := strconv.Atoi(port)
	if perr != nil || aerr != nil {
		return nil, config.ListenError(flag, addr, err)
	}
	for next := p + 1; next <= p+10; next++ {
		alt := net.JoinHostPort(host, strconv.Itoa(next))
		if ln, aerr := net.Listen("tcp", alt); aerr == nil {
			log.Warn("the default address is in use; listening on the next free port instead (choose one with --"+flag+" or "+config.EnvName(flag)+")",
				"flag", "--"+flag, "default", addr, "listening", ln.Addr().String())
			return ln, nil
		}
	}
	return nil, config.ListenError(flag, addr, err)
}
