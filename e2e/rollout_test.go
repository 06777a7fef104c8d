package e2e

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// fleetSize is the number of devices per test (smaller under -race).
var fleetSize = 1000

func progress(e *env, f *fleet, jobID string) func() string {
	return func() string { return fmt.Sprintf("fleet: %s; job: %v", f.Stats(), e.view(jobID).Counts) }
}

// checkAllSucceeded: every task succeeded on its first notice, and every
// device acted exactly once.
func checkAllSucceeded(t *testing.T, e *env, f *fleet, jobID string, n int) {
	t.Helper()
	tasks := e.tasks(jobID)
	byState, byAttempts, _ := counts(tasks)
	if len(tasks) != n || byState["succeeded"] != n {
		for _, task := range tasks {
			if task.State != "succeeded" {
				t.Logf("task of %s: %s after %d notices: %s: %s", task.Device, task.State, task.Attempts, task.Reason, task.Detail)
				break
			}
		}
		t.Fatalf("tasks: %d, by state %v; want %d succeeded", len(tasks), byState, n)
	}
	if byAttempts[1] != n {
		t.Errorf("tasks by attempts %v: want every task notified once", byAttempts)
	}
	// The server has the versions; the devices' own counters follow as
	// their handlers return.
	f.settled(t)
	if st := f.Stats(); st.Succeeded != int64(n) || st.Attempts != int64(n) || st.Failed != 0 {
		t.Errorf("fleet: %s; want %d succeeded after %d attempts", st, n, n)
	}
	for _, task := range tasks {
		d, err := e.api.GetDevice(context.Background(), task.Product, task.Device)
		if err != nil {
			t.Fatal(err)
		}
		if d.Versions[ota.DefaultModule] != task.ToVersion {
			t.Fatalf("device %s reports %q, want %q", d.Name, d.Versions[ota.DefaultModule], task.ToVersion)
		}
	}
}

func TestRolloutEmbeddedBroker(t *testing.T) {
	e := start(t, nil)
	f := e.fleet(sim.Config{Product: "thermo", Count: fleetSize, Version: "1.0", Interrupt: true})
	f.connected(t, int64(fleetSize))
	pkg := e.upload("thermo", "2.0", 256<<10)
	job := e.job(pkg, nil)
	waitFor(t, 3*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
	checkAllSucceeded(t, e, f, job.ID, fleetSize)
	if st := f.Stats(); st.Resumed != int64(fleetSize) || st.Bytes != int64(fleetSize)*pkg.Size {
		t.Errorf("fleet: %d downloads resumed, %d bytes; want %d resumed, %d bytes", st.Resumed, st.Bytes, fleetSize, int64(fleetSize)*pkg.Size)
	}
}

func TestRolloutHTTPPolling(t *testing.T) {
	e := start(t, func(c *config.Config) { c.MQTTAddr = config.Off })
	f := e.fleet(sim.Config{Product: "meter", Count: 200, Version: "1.0", Transport: "http", PollInterval: 200 * time.Millisecond})
	f.connected(t, 200)
	pkg := e.upload("meter", "1.1", 64<<10)
	job := e.job(pkg, nil)
	waitFor(t, 3*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
	checkAllSucceeded(t, e, f, job.ID, 200)
}

// Failures injected by device index give exact counts: devices failing
// their first attempt succeed on the retry; devices failing every attempt
// end failed after retry.count+1 notices, with the reason they reported;
// offline devices keep their tasks waiting.
func TestRolloutFailureInjection(t *testing.T) {
	t.Run("fail first attempt, then retry", func(t *testing.T) {
		e := start(t, nil)
		f := e.fleet(sim.Config{Product: "p1", Count: fleetSize, Version: "1.0", FailDownload: 0.1, FailInstall: 0.1, FailAttempts: 1})
		plan := f.Counts()
		f.connected(t, int64(fleetSize))
		pkg := e.upload("p1", "2.0", 32<<10)
		job := e.job(pkg, func(j *client.JobCreate) { j.Retry = client.JobRetry{Count: 2} })
		waitFor(t, 3*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
		tasks := e.tasks(job.ID)
		byState, byAttempts, _ := counts(tasks)
		failing := plan[sim.FailDownload] + plan[sim.FailInstall]
		if plan[sim.FailDownload] != fleetSize/10 || plan[sim.FailInstall] != (fleetSize-fleetSize/10)/10 {
			t.Fatalf("plan %v", plan)
		}
		if byState["succeeded"] != fleetSize {
			t.Fatalf("tasks by state %v", byState)
		}
		if byAttempts[1] != fleetSize-failing || byAttempts[2] != failing {
			t.Fatalf("tasks by attempts %v; want %d once and %d twice", byAttempts, fleetSize-failing, failing)
		}
		f.settled(t)
		if st := f.Stats(); st.Succeeded != int64(fleetSize) || st.Attempts != int64(fleetSize+failing) {
			t.Fatalf("fleet: %s", st)
		}
	})

	t.Run("fail always, offline devices", func(t *testing.T) {
		e := start(t, nil)
		f := e.fleet(sim.Config{Product: "p2", Count: fleetSize, Version: "1.0", Offline: 0.05, FailDownload: 0.1, FailInstall: 0.1})
		plan := f.Counts()
		online := int64(fleetSize - plan[sim.Offline])
		f.connected(t, online)
		pkg := e.upload("p2", "2.0", 32<<10)
		job := e.job(pkg, func(j *client.JobCreate) { j.Retry = client.JobRetry{Count: 1} })
		wantFailed := plan[sim.FailDownload] + plan[sim.FailInstall]
		waitFor(t, 3*time.Minute, "every online device to finish", func() bool {
			c := e.view(job.ID).Counts
			return c["succeeded"] == int64(plan[sim.Upgrade]) && c["failed"] == int64(wantFailed)
		}, progress(e, f, job.ID))
		tasks := e.tasks(job.ID)
		byState, _, byReason := counts(tasks)
		// Offline devices (never connected, no version known) wait: not
		// notified, not counted against concurrency, no timeout.
		if byState["waiting"] != plan[sim.Offline] || byState["notified"] != 0 || len(tasks) != fleetSize {
			t.Fatalf("tasks by state %v; want the %d offline devices' tasks waiting", byState, plan[sim.Offline])
		}
		if byReason[string(ota.ReasonDownloadFailed)] != plan[sim.FailDownload] || byReason[string(ota.ReasonInstallFailed)] != plan[sim.FailInstall] {
			t.Fatalf("tasks by reason %v; plan %v", byReason, plan)
		}
		for _, task := range tasks {
			if task.State == "failed" && task.Attempts != 2 {
				t.Fatalf("failed task of %s was notified %d times, want 2 (one retry)", task.Device, task.Attempts)
			}
			if task.State == "succeeded" && task.Attempts != 1 {
				t.Fatalf("succeeded task of %s was notified %d times, want 1", task.Device, task.Attempts)
			}
		}
		f.settled(t)
		if st := f.Stats(); st.Succeeded != int64(plan[sim.Upgrade]) || st.Failed != int64(wantFailed) || st.Attempts != int64(plan[sim.Upgrade]+2*wantFailed) {
			t.Fatalf("fleet: %s", st)
		}
		if _, err := e.api.CancelJob(context.Background(), job.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// A server restart in the middle of a rollout loses and duplicates nothing:
// devices reconnect and resume, every task succeeds on its one notice, and
// no device upgrades twice.
func TestServerRestartMidRollout(t *testing.T) {
	t.Run("embedded broker", func(t *testing.T) { restartMidRollout(t, nil, "") })
	t.Run("mosquitto", func(t *testing.T) {
		addr := testenv.MosquittoAddr(t)
		clientID, group := "updraft-e2e-"+randomHex(4), "e2e"+randomHex(4)
		t.Cleanup(func() { wipeSessions(t, addr, clientID, 16) })
		restartMidRollout(t, func(c *config.Config) {
			c.MQTTAddr = config.Off
			c.MQTTBroker = fmt.Sprintf("mqtt://%s?client_id=%s&group=%s&consumers=16", addr, clientID, group)
		}, addr)
	})
}

func restartMidRollout(t *testing.T, mutate func(*config.Config), deviceBroker string) {
	e := start(t, mutate)
	cfg := e.srv.Config()
	product := "r" + randomHex(4)
	// With an external broker the devices do not see the server restart:
	// a notice the old server claimed but had not published yet reaches
	// them through their periodic check.
	f := e.fleet(sim.Config{Product: product, Count: fleetSize, Version: "1.0", MQTT: deviceBroker, CheckInterval: 2 * time.Second})
	f.connected(t, int64(fleetSize))
	pkg := e.upload(product, "2.0", 1<<20)
	job := e.job(pkg, func(j *client.JobCreate) { j.MaxConcurrency = fleetSize / 10 }) // waves: the restart lands mid-rollout
	waitFor(t, 3*time.Minute, "a third of the fleet upgraded", func() bool { return f.Stats().Succeeded >= int64(fleetSize/3) }, progress(e, f, job.ID))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.Stats()
	// The same data and addresses: the download URLs devices hold point at
	// the HTTP address.
	again := server.StartForTest(t, func(c *config.Config) {
		*c = cfg
		c.Stdout = io.Discard
		c.HTTPAddr = e.srv.Addr() // the real ports, not :0
		if c.MQTTBroker == "" {
			c.MQTTAddr = e.srv.MQTTAddr()
		}
	})
	e2 := attach(t, again)
	waitFor(t, 3*time.Minute, "the job to complete after the restart", func() bool { return e2.view(job.ID).State == "completed" }, progress(e2, f, job.ID))
	if before.Succeeded == int64(fleetSize) {
		t.Fatalf("the whole fleet upgraded before the restart: %s", before)
	}
	checkAllSucceeded(t, e2, f, job.ID, fleetSize)
}

// Mosquitto as the broker: the server consumes device topics through shared
// subscriptions and publishes notices as a client; devices connect to
// Mosquitto.
func TestRolloutMosquitto(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	clientID, group := "updraft-e2e-"+randomHex(4), "e2e"+randomHex(4)
	e := start(t, func(c *config.Config) {
		c.MQTTAddr = config.Off
		c.MQTTBroker = fmt.Sprintf("mqtt://%s?client_id=%s&group=%s&consumers=16", addr, clientID, group)
	})
	t.Cleanup(func() { wipeSessions(t, addr, clientID, 16) })
	product := "mq" + randomHex(4)
	f := e.fleet(sim.Config{Product: product, Count: fleetSize, Version: "1.0", MQTT: addr})
	f.connected(t, int64(fleetSize))
	// Presence arrives through the broker: wait until the server saw it.
	waitFor(t, time.Minute, "devices online at the server", func() bool { return e.onlineCount(product) == fleetSize }, func() string { return fmt.Sprint(e.onlineCount(product)) })
	pkg := e.upload(product, "2.0", 64<<10)
	job := e.job(pkg, nil)
	waitFor(t, 3*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
	checkAllSucceeded(t, e, f, job.ID, fleetSize)
}

// wipeSessions removes the server's persistent sessions from the shared
// Mosquitto: consumers "{clientID}-s{slot}-c{i}" of every replica slot
// (max_replicas, default 8).
func wipeSessions(t *testing.T, addr, clientID string, consumers int) {
	for slot := 0; slot < 8; slot++ {
		for i := 0; i < consumers; i++ {
			o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("%s-s%d-c%d", clientID, slot, i)).SetCleanSession(true)
			c := paho.NewClient(o)
			if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				c.Disconnect(0)
			}
		}
	}
}
