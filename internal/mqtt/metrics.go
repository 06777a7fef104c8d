package mqtt

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the MQTT front-end's Prometheus series.
type metrics struct {
	messages *prometheus.CounterVec // device messages by dialect and result
}

// Message results.
const (
	resultHandled = "handled" // taken by the service
	resultDropped = "dropped" // malformed or refused: acknowledged and dropped
	resultRetry   = "retry"   // the service was unavailable: not acknowledged, the device resends
	resultUnacked = "unacked" // external broker: still failing after retries; left for the broker to redeliver
	resultStale   = "stale"   // external broker: a device status older than the one applied (also counted handled)
)

// newMetrics registers the series on reg (nil: none); gauges read the
// broker's own counters.
func newMetrics(reg prometheus.Registerer, gauges map[string]func() float64, counters map[string]func() float64) (*metrics, error) {
	m := &metrics{messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "updraft_mqtt_device_messages_total",
		Help: "Messages devices published, by dialect and result (handled, dropped, retry, unacked).",
	}, []string{"dialect", "result"})}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.messages}
	for name, f := range gauges {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help[name]}, f))
	}
	for name, f := range counters {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help[name]}, f))
	}
	return m, register(reg, cs...)
}

// register registers cs on reg (nil: none). A collector already registered
// (a second broker or client in one process, as tests have) is kept.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

var help = map[string]string{
	"updraft_mqtt_connected_devices":       "Devices connected to the embedded broker.",
	"updraft_mqtt_listening_devices":       "Connected devices subscribed to their notices.",
	"updraft_mqtt_notices_published_total": "Upgrade notices published to devices.",
}
