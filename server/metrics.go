package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Metrics are the Prometheus metrics a [Server] serves at /metrics, on a
// registry of their own (never the global one). Create them with
// [NewMetrics] before opening the engine, give [Metrics.Observer] to
// [ordo.Config.Observer] so that they count what the engine commits, and
// pass them in [Options.Metrics]. Without them, a server makes its own,
// whose counters of instances, steps and effects stay at zero.
//
// Counters and histograms count what this process committed; gauges of
// instances and queues are read from the store at each scrape and so cover
// every process sharing it. docs/operations-metrics.md lists every metric.
type Metrics struct {
	reg *prometheus.Registry

	started       *prometheus.CounterVec
	ended         *prometheus.CounterVec
	parked        *prometheus.CounterVec
	cycle         *prometheus.HistogramVec
	step          *prometheus.HistogramVec
	stepFailures  *prometheus.CounterVec
	effectFailure *prometheus.CounterVec
	requests      *prometheus.CounterVec

	mu     sync.Mutex
	engine *ordo.Engine // the engine the metrics serve, once attached
}

// cycleBuckets are the buckets of workflow cycle times, in seconds: from
// 10 ms to 7 days (flows wait for people and timers).
var cycleBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600}

// stepBuckets are the buckets of step attempt latencies, in seconds: from
// 1 ms to 10 minutes.
var stepBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewMetrics returns the metrics of a server, with the Go runtime and
// process collectors registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_instances_started_total",
			Help: "Workflow instances started by this process.",
		}, []string{"workflow"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_instances_ended_total",
			Help: "Workflow instances that ended, by final status (completed, failed, compensated, cancelled).",
		}, []string{"workflow", "status"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_instances_parked_total",
			Help: "Times a workflow instance was parked for manual review.",
		}, []string{"workflow"}),
		cycle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_instance_cycle_seconds",
			Help:    "Time from an instance's start to its end, by final status.",
			Buckets: cycleBuckets,
		}, []string{"workflow", "status"}),
		step: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_step_duration_seconds",
			Help:    "Duration of step attempts, from start to completion or failure.",
			Buckets: stepBuckets,
		}, []string{"workflow", "step", "status"}),
		stepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_step_failures_total",
			Help: "Failed step attempts, by error code.",
		}, []string{"workflow", "step", "code"}),
		effectFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_effect_failures_total",
			Help: "Failed tries of side effects, by effect type.",
		}, []string{"workflow", "type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_http_requests_total",
			Help: "API requests, by route pattern and HTTP status.",
		}, []string{"route", "status"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.started, m.ended, m.parked, m.cycle, m.step, m.stepFailures, m.effectFailure, m.requests,
	)
	return m
}

// Registry returns the registry the metrics are on, to add metrics of
// your own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observer returns the engine observer that feeds the metrics: set it as
// [ordo.Config.Observer].
func (m *Metrics) Observer() *ordo.Observer {
	return &ordo.Observer{
		InstanceStatus: func(c ordo.InstanceStatusChange) {
			switch {
			case c.From == "":
				m.started.WithLabelValues(c.Workflow).Inc()
			case c.To == ordotype.StatusReview:
				m.parked.WithLabelValues(c.Workflow).Inc()
			}
			if c.To.Terminal() {
				m.ended.WithLabelValues(c.Workflow, string(c.To)).Inc()
				m.cycle.WithLabelValues(c.Workflow, string(c.To)).Observe(c.At.Sub(c.CreatedAt).Seconds())
			}
		},
		StepEnded: func(s ordo.StepEnded) {
			if !s.StartedAt.IsZero() {
				m.step.WithLabelValues(s.Workflow, s.Step, string(s.Status)).Observe(s.FinishedAt.Sub(s.StartedAt).Seconds())
			}
			if s.Status == ordotype.StepFailed {
				code := ""
				if s.Err != nil {
					code = s.Err.Code
				}
				m.stepFailures.WithLabelValues(s.Workflow, s.Step, code).Inc()
			}
		},
		EffectFailed: func(e ordo.EffectFailed) {
			m.effectFailure.WithLabelValues(e.Workflow, e.Type).Inc()
		},
	}
}

// attach registers the collectors that read eng's store and counters at
// each scrape. Metrics serve one engine.
func (m *Metrics) attach(eng *ordo.Engine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.engine {
	case eng:
		return nil
	case nil:
		if err := m.reg.Register(&engineCollector{eng: eng}); err != nil {
			return fmt.Errorf("server: registering metrics: %w", err)
		}
		m.engine = eng
		return nil
	}
	return errors.New("server: Options.Metrics already serve another engine: create one Metrics per engine")
}

// handler serves the registry in the Prometheus text format.
func (m *Metrics) handler(logger interface {
	Println(v ...any)
}) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: logger, ErrorHandling: promhttp.ContinueOnError})
}

// liveStatuses are the statuses the instance gauges count: those of
// instances that have not ended. Counting only them keeps the scrape's
// query to live instances.
var liveStatuses = []ordotype.Status{ordotype.StatusRunning, ordotype.StatusWaiting, ordotype.StatusDeferred, ordotype.StatusReview}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	instancesDesc = prometheus.NewDesc("ordo_instances",
		"Workflow instances that have not ended, by status (running, waiting, deferred, review), read from the store.",
		[]string{"workflow", "status"}, nil)
	queueDepthDesc = prometheus.NewDesc("ordo_queue_depth",
		"Tasks not yet done (due or not, leased or not), by kind (step, effect, timer) and queue, read from the store.",
		[]string{"kind", "queue"}, nil)
	storeUpDesc = prometheus.NewDesc("ordo_metrics_store_up",
		"1 when the store answered the scrape's queries, 0 when it did not.",
		nil, nil)
	engineCounterDescs = map[string]*prometheus.Desc{}
)

// engineCounters are the engine's own counters ([ordo.Stats]) and how to
// read each.
var engineCounters = []struct {
	name, help string
	get        func(ordo.Stats) int64
}{
	{"ordo_engine_commits_total", "Group commits written by this process.", func(s ordo.Stats) int64 { return s.Batches }},
	{"ordo_engine_transitions_total", "Instance transitions written in group commits.", func(s ordo.Stats) int64 { return s.Transitions }},
	{"ordo_engine_commit_errors_total", "Group commits that failed as a whole.", func(s ordo.Stats) int64 { return s.BatchErrors }},
	{"ordo_engine_conflicts_total", "Transitions decided again after another writer advanced the instance.", func(s ordo.Stats) int64 { return s.Conflicts }},
	{"ordo_engine_duplicates_total", "Completions dropped as duplicates or stale (a lease lost to another process).", func(s ordo.Stats) int64 { return s.Duplicates }},
	{"ordo_engine_steps_run_total", "Step attempts run by this process.", func(s ordo.Stats) int64 { return s.StepsRun }},
	{"ordo_engine_effects_run_total", "Side-effect tries performed by this process.", func(s ordo.Stats) int64 { return s.EffectsRun }},
	{"ordo_engine_effect_failures_total", "Side-effect tries that failed in this process.", func(s ordo.Stats) int64 { return s.EffectFailures }},
	{"ordo_engine_claimed_tasks_total", "Tasks claimed from the store by this process's scheduler.", func(s ordo.Stats) int64 { return s.ClaimedTasks }},
	{"ordo_task_lease_expiries_total", "Tasks this process claimed again after their holder's lease ran out (a node or worker died, stalled or stopped heartbeating), or was handed back by a stopping node.", func(s ordo.Stats) int64 { return s.LeaseExpiries }},
}

func init() {
	for _, c := range engineCounters {
		engineCounterDescs[c.name] = prometheus.NewDesc(c.name, c.help, nil, nil)
	}
}

// engineCollector reads the store's gauges and the engine's counters at
// each scrape.
type engineCollector struct{ eng *ordo.Engine }

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- queueDepthDesc
	ch <- storeUpDesc
	for _, d := range engineCounterDescs {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.eng.Stats()
	for _, ec := range engineCounters {
		ch <- prometheus.MustNewConstMetric(engineCounterDescs[ec.name], prometheus.CounterValue, float64(ec.get(stats)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	store := c.eng.Store()
	up := 1.0
	instances, err := store.CountInstances(ctx, &ordostore.CountInstancesParams{Statuses: liveStatuses})
	if err != nil {
		up = 0
	}
	// Every live status of every workflow seen is reported, 0 included,
	// so that a gauge drops to 0 rather than vanishing.
	byWorkflow := map[string]map[ordotype.Status]int{}
	for _, ic := range instances {
		if byWorkflow[ic.Workflow] == nil {
			byWorkflow[ic.Workflow] = map[ordotype.Status]int{}
		}
		byWorkflow[ic.Workflow][ic.Status] += ic.N
	}
	if err == nil {
		if defs, derr := c.eng.Definitions(ctx); derr == nil {
			for _, d := range defs {
				if byWorkflow[d.Name] == nil {
					byWorkflow[d.Name] = map[ordotype.Status]int{}
				}
			}
		}
	}
	for wf, counts := range byWorkflow {
		for _, st := range liveStatuses {
			ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(counts[st]), wf, string(st))
		}
	}
	queues, err := store.CountQueues(ctx, &ordostore.CountQueuesParams{Now: time.Now()})
	if err != nil {
		up = 0
	}
	for _, q := range queues {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.N), string(q.Kind), q.Queue)
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
}

// serveMetrics: GET /metrics. The metrics in the Prometheus text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}
