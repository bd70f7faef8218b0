package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// runConfig is what `fleetsim run` was asked to do.
type runConfig struct {
	mqttAddr     string
	devices      int
	connections  int
	inflight     int
	qos          int
	prefix       string
	deviceOffset int
	topic        string
	username     string
	password     string
	keepAlive    time.Duration

	httpsAddr   string
	stsDevices  int
	csaDevices  int
	httpTimeout time.Duration

	rate            float64
	deviceRate      float64
	hold            time.Duration
	duration        time.Duration
	messages        int64
	size            int
	mixSpec         string
	mix             mix
	seed            uint64
	runID           string
	warmup          bool
	reconnect       bool
	drain           time.Duration
	connectParallel int
	connectTimeout  time.Duration
	publishTimeout  time.Duration

	ackedPath     string
	progress      time.Duration
	jsonOut       bool
	cpuProfile    string
	gcHeadroomMiB int64 // 0: Go's default collector
}

const runUsage = `Usage: fleetsim run [flags]

Simulates vehicle terminals: MQTT terminals publishing canonical reports to the
gateway's broker, and legacy STS/CSA terminals POSTing to its HTTPS endpoint.
Every device numbers its messages 1, 2, 3... (seq). At the end it prints what
was sent and acknowledged and, with --acked, writes the file 'fleetsim verify'
checks Kafka against. Progress goes to stderr every --progress.

Load shapes (MQTT): --devices N terminals, each on its own connection with
client id = device number (SIM-000001...), or --connections C < N connections
each carrying N/C devices (client ids SIM-C00001...). Each connection keeps up
to --inflight QoS 1 messages outstanding, published in order by one goroutine;
a device's messages always go out on one connection in seq order.

The acked file (--acked) is JSON lines: a header, then one line per device
and report type with the seq ranges acknowledged, sent but unacknowledged,
and re-sent, e.g.
  {"device":"SIM-000001","source":"mqtt","type":"gps","topic":"message-gps",
   "seq":[[1,3],[6,6]],"unacked":[[9,9]],"resent":[[6,6]]}

Examples:
  fleetsim run --devices 1000 --inflight 1 --duration 30s --warmup
  fleetsim run --devices 20 --inflight 16 --duration 30s --warmup --json
  fleetsim run --devices 1000 --connections 20 --inflight 16 --acked acked.jsonl
  fleetsim run --mqtt "" --sts-devices 100 --csa-devices 100 --rate 500
  fleetsim run --devices 500 --device-rate 20 --duration 30s --warmup   # open loop, 10k msg/s
  fleetsim run --devices 15000 --hold 20s                               # idle connections

Flags (-flag and --flag are the same):
`

// parseRunFlags parses and checks the flags of `fleetsim run`.
func parseRunFlags(args []string, stderr io.Writer) (*runConfig, error) {
	c := &runConfig{}
	fs := flag.NewFlagSet("fleetsim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.mqttAddr, "mqtt", "127.0.0.1:1883", "MQTT broker `host:port` (TCP), or a URL: tcp://, ssl:// (TLS, certificate not checked), ws://host:port/path, wss:// (empty: no MQTT load)")
	fs.IntVar(&c.devices, "devices", 100, "number of MQTT terminals")
	fs.IntVar(&c.connections, "connections", 0, "number of MQTT connections the devices are spread over (0: one per device)")
	fs.IntVar(&c.inflight, "inflight", 1, "QoS 1/2 messages in flight per connection")
	fs.IntVar(&c.qos, "qos", 1, "MQTT QoS (0, 1, 2); with 0, 'acked' means written and nothing is listed as acked in --acked")
	fs.StringVar(&c.prefix, "prefix", "", "prefix of every device number and client id (tell runs or processes apart)")
	fs.IntVar(&c.deviceOffset, "device-offset", 0, "number devices from offset+1 (shard a fleet over several processes)")
	fs.StringVar(&c.topic, "topic", "report", "MQTT topic to publish to")
	fs.StringVar(&c.username, "username", "", "MQTT username")
	fs.StringVar(&c.password, "password", "", "MQTT password")
	fs.DurationVar(&c.keepAlive, "keepalive", 30*time.Second, "MQTT keep-alive")

	fs.StringVar(&c.httpsAddr, "https", "127.0.0.1:8443", "legacy HTTPS endpoint `host:port` (used with --sts-devices or --csa-devices; certificate not checked)")
	fs.IntVar(&c.stsDevices, "sts-devices", 0, "number of STS terminals (JSON bodies, STS-00000001...)")
	fs.IntVar(&c.csaDevices, "csa-devices", 0, "number of CSA terminals (form bodies, CSA0000001...)")
	fs.DurationVar(&c.httpTimeout, "http-timeout", 30*time.Second, "timeout of one HTTPS request (a timed-out request is retried with the same seq)")

	fs.Float64Var(&c.rate, "rate", 0, "total messages (MQTT) plus requests (HTTPS) per second over all devices (0: as fast as acks allow)")
	fs.Float64Var(&c.deviceRate, "device-rate", 0, "open loop: MQTT messages per second per device, sent on schedule whatever the acks do; latency counts from the scheduled send time, so a stall shows (0: closed loop)")
	fs.DurationVar(&c.hold, "hold", 0, "connect every MQTT client, keep the connections idle (no PUBLISH) this long, then disconnect (memory per idle connection)")
	fs.DurationVar(&c.duration, "duration", 0, "how long to send (default 30s unless --messages is given; both: whichever ends first)")
	fs.Int64Var(&c.messages, "messages", 0, "messages (HTTPS: requests) per device (0: unlimited)")
	fs.IntVar(&c.size, "size", 300, "target MQTT payload size in bytes (reports are padded up to it, never cut below their natural size)")
	fs.StringVar(&c.mixSpec, "mix", "log=1,gps=4,kinematic=2,adas=1,boot=0", "report types and their weights (other type names give generic reports)")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed of the generated data (0: random)")
	fs.StringVar(&c.runID, "run-id", "", `run id put in every MQTT report and STS record as "run" (default: random)`)
	fs.BoolVar(&c.warmup, "warmup", false, "connect every MQTT client first, then start the clock")
	fs.BoolVar(&c.reconnect, "reconnect", false, "on connection loss reconnect and re-send every unacknowledged message, in order (recorded as resent)")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "after sending ends, how long to wait for outstanding acks and re-sends")
	fs.IntVar(&c.connectParallel, "connect-parallel", 64, "MQTT connection attempts at once")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "MQTT connect timeout")
	fs.DurationVar(&c.publishTimeout, "publish-timeout", 5*time.Second, "how long a publish may wait to be handed to the connection's writer before it fails and the connection counts as broken")

	fs.StringVar(&c.ackedPath, "acked", "", "write what was acknowledged to this `file` (JSON lines, for fleetsim verify)")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "progress line interval on stderr (0: none)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object")
	fs.Int64Var(&c.gcHeadroomMiB, "gc-headroom-mib", 1024, "while the clock runs, fleetsim's own garbage collector waits until the process has grown by this many MiB, so that its pauses do not count as broker latency (0: Go's default collector, or GOGC)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of fleetsim itself to `file` (is the load tool the bottleneck?)")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.mqttAddr == "" {
		c.devices = 0
	}
	if c.httpsAddr == "" {
		c.stsDevices, c.csaDevices = 0, 0
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if !durationSet && c.messages == 0 {
		c.duration = 30 * time.Second
	}
	return c, c.validate()
}

func (c *runConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.devices < 0 || c.stsDevices < 0 || c.csaDevices < 0 || c.deviceOffset < 0 {
		bad("--devices, --sts-devices, --csa-devices and --device-offset must not be negative")
	}
	if c.devices+c.stsDevices+c.csaDevices == 0 {
		bad("nothing to simulate: give --devices (with --mqtt) or --sts-devices/--csa-devices (with --https)")
	}
	if c.connections < 0 || c.connections > c.devices {
		bad("--connections must be between 0 and --devices (%d)", c.devices)
	}
	if c.connections == 0 {
		c.connections = c.devices
	}
	if c.inflight < 1 || c.inflight > 65535 {
		bad("--inflight must be between 1 and 65535 (MQTT packet ids)")
	}
	if c.qos < 0 || c.qos > 2 {
		bad("--qos must be 0, 1 or 2")
	}
	if c.rate < 0 || c.duration < 0 || c.messages < 0 || c.size < 0 || c.drain < 0 || c.progress < 0 {
		bad("--rate, --duration, --messages, --size, --drain and --progress must not be negative")
	}
	if c.deviceRate < 0 || c.deviceRate > 0 && c.rate > 0 {
		bad("--device-rate must not be negative, and goes without --rate")
	}
	if c.duration == 0 && c.messages == 0 && c.hold == 0 {
		bad("give --duration or --messages")
	}
	if c.gcHeadroomMiB < 0 {
		bad("--gc-headroom-mib must not be negative")
	}
	if c.hold < 0 {
		bad("--hold must not be negative")
	}
	if c.publishTimeout <= 0 || c.connectTimeout <= 0 {
		bad("--publish-timeout and --connect-timeout must be positive")
	}
	if c.connectParallel < 1 {
		bad("--connect-parallel must be at least 1")
	}
	if c.topic == "" || strings.ContainsAny(c.topic, "+#") {
		bad("--topic must be a topic name without wildcards")
	}
	m, err := parseMix(c.mixSpec)
	if err != nil {
		bad("--mix: %v", err)
	}
	c.mix = m
	if err == nil && c.csaDevices > 0 && m.index(typeGPS) < 0 && m.index(typeLog) < 0 {
		bad("--csa-devices needs gps or log in --mix: a CSA /log request carries nothing else")
	}
	if c.runID == "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		c.runID = hex.EncodeToString(b[:])
	}
	if c.seed == 0 {
		c.seed = rand.Uint64()
	}
	return errors.Join(errs...)
}

// runCommand is `fleetsim run`. The first SIGINT/SIGTERM stops sending (as
// the end of --duration does) and drains; a second one stops at once.
func runCommand(ctx context.Context, hardStop context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseRunFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim run: %v\n", err)
		return 2
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "fleetsim run: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "fleetsim run: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	sum, err := simulate(ctx, hardStop, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim run: %v\n", err)
		return 1
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "fleetsim run: %v\n", err)
			return 1
		}
	} else {
		sum.writeText(stdout)
	}
	return 0
}

// simulate runs the load until it ends (duration, message count, or ctx) and
// the outstanding messages are settled (or hardStop, or --drain after the
// end), then writes the acked file.
func simulate(ctx, hardStop context.Context, cfg *runConfig, logw io.Writer) (*Summary, error) {
	started := time.Now()
	hdr := ackedHeader{Run: cfg.runID, Started: started.UTC().Format(time.RFC3339Nano), QoS: cfg.qos}
	// The file is opened first so that a bad path fails before the load does.
	var ackedOut *os.File
	if cfg.ackedPath != "" {
		f, err := os.Create(cfg.ackedPath)
		if err != nil {
			return nil, err
		}
		ackedOut = f
		defer f.Close()
	}

	pace := newPacer(cfg.rate)
	var mq *mqttLoad
	var hl *httpLoad
	if cfg.devices > 0 {
		mq = newMQTTLoad(cfg, pace)
	}
	if cfg.stsDevices+cfg.csaDevices > 0 {
		hl = newHTTPLoad(cfg, pace, started)
		hdr.CSABaseMS = hl.csaBaseMS
	}

	if (cfg.warmup || cfg.hold > 0) && mq != nil {
		t0 := time.Now()
		up := mq.connectAll(ctx)
		fmt.Fprintf(logw, "fleetsim: warm-up: %d of %d MQTT connections up in %.1f s\n",
			up, len(mq.conns), time.Since(t0).Seconds())
	}
	if cfg.hold > 0 && mq != nil {
		return holdIdle(ctx, cfg, mq, started, logw), nil
	}

	var gc *gcHold
	if cfg.gcHeadroomMiB > 0 {
		gc = &gcHold{headroom: cfg.gcHeadroomMiB << 20}
		gc.start()
		defer gc.stop() // on every return; the count is taken below
	}

	// The clock starts now; genCtx ends sending, hardCtx ends waiting.
	clock := time.Now()
	genCtx, genCancel := context.WithCancel(ctx)
	defer genCancel()
	if cfg.duration > 0 {
		var c context.CancelFunc
		genCtx, c = context.WithTimeout(genCtx, cfg.duration)
		defer c()
	}
	hardCtx, hardCancel := context.WithCancel(hardStop)
	defer hardCancel()
	go func() {
		select {
		case <-genCtx.Done():
		case <-hardCtx.Done():
			return
		}
		select {
		case <-time.After(cfg.drain):
			hardCancel()
		case <-hardCtx.Done():
		}
	}()

	if mq != nil && cfg.deviceRate > 0 {
		for _, c := range mq.conns {
			c.sched = newSchedule(cfg.deviceRate, len(c.devices), c.rng, clock)
		}
	}

	// Sending also ends when every sender has made its last message
	// (--messages), so that --drain bounds the wait for the last acks.
	var senders sync.WaitGroup
	if mq != nil {
		senders.Add(len(mq.conns))
		mq.senderDone = senders.Done
	}
	if hl != nil {
		senders.Add(len(hl.devices))
		hl.senderDone = senders.Done
	}
	go func() {
		senders.Wait()
		genCancel()
	}()

	var wg sync.WaitGroup
	var sources []*sourceStats
	if mq != nil {
		mq.stats.clock = clock
		sources = append(sources, mq.stats)
		wg.Go(func() { mq.run(genCtx, hardCtx) })
	}
	if hl != nil {
		hl.stats.clock = clock
		sources = append(sources, hl.stats)
		wg.Go(func() { hl.run(genCtx, hardCtx) })
	}
	done := make(chan struct{})
	var pw sync.WaitGroup
	if cfg.progress > 0 {
		pw.Go(func() { progressLoop(logw, cfg.progress, clock, sources, mq, done) })
	}
	wg.Wait()
	close(done)
	pw.Wait()

	var lastAck time.Duration
	for _, s := range sources {
		lastAck = max(lastAck, time.Duration(s.lastAckNS.Load()))
	}
	if lastAck == 0 {
		lastAck = time.Since(clock)
	}
	sum := &Summary{Run: cfg.runID, Started: started.UTC(), ElapsedS: lastAck.Seconds(), Size: cfg.size, Rate: cfg.rate,
		DeviceRate: cfg.deviceRate, Mix: cfg.mixSpec}
	var ledgers []*ledger
	if mq != nil {
		sum.MQTT = mq.stats.summarize(lastAck)
		sum.MQTT.Unit, sum.MQTT.Devices, sum.MQTT.Connections = "message", cfg.devices, cfg.connections
		sum.MQTT.Inflight, sum.MQTT.QoS = cfg.inflight, &cfg.qos
		sum.Records += sum.MQTT.Records
		ledgers = append(ledgers, mq.ledgers()...)
	}
	if hl != nil {
		sum.HTTPS = hl.stats.summarize(lastAck)
		sum.HTTPS.Unit, sum.HTTPS.Devices = "request", cfg.stsDevices+cfg.csaDevices
		sum.Records += sum.HTTPS.Records
		ledgers = append(ledgers, hl.ledgers()...)
	}
	if s := lastAck.Seconds(); s > 0 {
		sum.RecordsPerS = float64(int64(float64(sum.Records)/s + 0.5))
	}
	if ackedOut != nil {
		if err := writeAcked(ackedOut, hdr, cfg.mix.types, ledgers); err != nil {
			return nil, fmt.Errorf("write %s: %w", cfg.ackedPath, err)
		}
		if err := ackedOut.Close(); err != nil {
			return nil, fmt.Errorf("write %s: %w", cfg.ackedPath, err)
		}
		sum.AckedFile = cfg.ackedPath
	}
	sum.CPUS = processCPU().Seconds()
	if gc != nil {
		sum.GCCycles = int64(gc.stop())
	} else {
		sum.GCCycles = -1
	}
	return sum, nil
}

// progressLoop prints a progress line every interval until done is closed.
func progressLoop(w io.Writer, interval time.Duration, clock time.Time, sources []*sourceStats, mq *mqttLoad, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := make([]int64, len(sources))
	last := clock
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			var b strings.Builder
			fmt.Fprintf(&b, "[%6.1fs]", now.Sub(clock).Seconds())
			for i, s := range sources {
				acked := s.acked.Load()
				rate := float64(acked-prev[i]) / now.Sub(last).Seconds()
				prev[i] = acked
				fmt.Fprintf(&b, " %s: sent %d acked %d (%.0f/s) failed %d in flight %d",
					s.name, s.sent.Load(), acked, rate, s.failed.Load(), s.inflight.Load())
				if s == mqStats(mq) {
					fmt.Fprintf(&b, " conns %d/%d", s.connected.Load(), len(mq.conns))
				}
			}
			last = now
			fmt.Fprintln(w, b.String())
		}
	}
}

func mqStats(mq *mqttLoad) *sourceStats {
	if mq == nil {
		return nil
	}
	return mq.stats
}
