package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/ota"
)

// SlotLeaser leases the numbered slots that give replicas' consumer
// sessions their stable identities (see ExternalOptions.Slots).
// *service.Service implements it on the store (store.ReplicaSlots).
type SlotLeaser interface {
	LeaseReplicaSlot(ctx context.Context, owner, base string, max int, ttl time.Duration) (int, string, error)
	ClaimVacantReplicaSlot(ctx context.Context, owner string, ttl time.Duration) (int, string, error)
	RenewReplicaSlot(ctx context.Context, slot int, owner string, ttl time.Duration) error
	ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error
}

// slotLease is this replica's lease; only NewExternal and keepSlot change
// it, one after the other.
type slotLease struct {
	owner   string    // this process: "{host}/{pid}/{random}", for the logs and the store
	slot    int       // -1: none held
	renewed time.Time // last successful lease or renewal
}

// drainQuiet is how long a drained session must stay silent before it is
// deemed empty; drainBound bounds one session's drain.
const (
	drainQuiet = time.Second
	drainBound = time.Minute
)

func replicaOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Slot is the replica slot this server holds (-1: none, or no Slots).
func (e *External) Slot() int {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	return e.slot.slot
}

// leaseSlot leases a slot and returns its consumers' client id prefix.
func (e *External) leaseSlot() (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
	defer cancel()
	n, base, err := e.opts.Slots.LeaseReplicaSlot(ctx, e.slot.owner, e.opts.ClientID, e.opts.MaxReplicas, e.opts.SlotTTL)
	if err != nil {
		return "", fmt.Errorf("leasing a replica slot for the MQTT consumer sessions (max_replicas=%d): %w", e.opts.MaxReplicas, err)
	}
	e.cmu.Lock()
	e.slot.slot, e.slot.renewed = n, time.Now()
	e.cmu.Unlock()
	e.log.Info("leased replica slot", "slot", n, "owner", e.slot.owner, "client_ids", slotPrefix(base, n)+"-c*")
	return slotPrefix(base, n), nil
}

// slotPrefix names slot n's sessions: base is the ClientID of the replica
// that first leased it, kept with the slot so that whoever resumes or
// drains it finds its sessions whatever its own ClientID.
func slotPrefix(base string, n int) string { return fmt.Sprintf("%s-s%d", base, n) }

// releaseSlot ends the lease at shutdown; the sessions stay (persistent),
// so the next replica to start resumes them.
func (e *External) releaseSlot() {
	if e.opts.Slots == nil || e.slot.slot < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.CallTimeout)
	defer cancel()
	if err := e.opts.Slots.ReleaseReplicaSlot(ctx, e.slot.slot, e.slot.owner, false); err != nil {
		e.log.Warn("releasing the replica slot; it is vacant when its lease expires", "slot", e.slot.slot, "err", err)
	}
	e.slot.slot = -1
}

// keepSlot renews the lease every third of SlotTTL, leases again (and
// reconnects the consumers under the new slot's ids) after losing it, and
// drains vacant slots, one at a time, in the background.
func (e *External) keepSlot() {
	defer e.wg.Done()
	every := e.opts.SlotTTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	var draining atomic.Bool
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
		if e.Slot() >= 0 {
			ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
			err := e.opts.Slots.RenewReplicaSlot(ctx, e.Slot(), e.slot.owner, e.opts.SlotTTL)
			cancel()
			switch {
			case err == nil:
				e.cmu.Lock()
				e.slot.renewed = time.Now()
				e.cmu.Unlock()
			case ota.ErrorCode(err) == ota.CodeConflict:
				e.log.Error("lost the replica slot (its lease expired and another replica took it); consuming again under a new slot", "slot", e.Slot(), "err", err)
				e.dropSlot()
			case time.Since(e.slot.renewed) > e.opts.SlotTTL-every:
				// Another replica may take the slot any moment: two
				// consumers under one client id would take the session
				// from each other in turn.
				e.log.Error("cannot renew the replica slot before its lease ends; stopping the consumers until it can lease one again", "slot", e.Slot(), "err", err)
				e.dropSlot()
			default:
				e.log.Warn("renewing the replica slot failed; trying again", "slot", e.Slot(), "err", err)
			}
		}
		if e.Slot() < 0 && e.ctx.Err() == nil {
			prefix, err := e.leaseSlot()
			if err == nil {
				err = e.startConsumers(prefix)
			}
			if err != nil {
				e.log.Error("not consuming device messages: no replica slot", "err", err)
				e.dropSlot()
				continue
			}
		}
		if draining.CompareAndSwap(false, true) {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer draining.Store(false)
				e.drainVacant()
			}()
		}
	}
}

// dropSlot stops the consumers and forgets the slot. It also releases it
// as far as this owner goes (the store changes no row another owner took):
// on PostgreSQL that lets go of the slot's lock, which would otherwise keep
// it from the replica that takes it next.
func (e *External) dropSlot() {
	e.stopConsumers()
	e.cmu.Lock()
	n := e.slot.slot
	e.slot.slot = -1
	e.cmu.Unlock()
	if n >= 0 {
		ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
		defer cancel()
		if err := e.opts.Slots.ReleaseReplicaSlot(ctx, n, e.slot.owner, false); err != nil {
			e.log.Warn("releasing a dropped replica slot; it is vacant when its lease expires", "slot", n, "err", err)
		}
	}
}

// drainVacant claims one vacant slot, drains its sessions and frees it.
func (e *External) drainVacant() {
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
	k, base, err := e.opts.Slots.ClaimVacantReplicaSlot(ctx, e.slot.owner, e.opts.SlotTTL)
	cancel()
	if err != nil || k < 0 {
		if err != nil {
			e.log.Warn("looking for vacant replica slots", "err", err)
		}
		return
	}
	e.log.Info("draining the sessions of a vacant replica slot", "slot", k)
	ok := true
	// Every consumer number a replica may have used (a dead replica's
	// Consumers may differ from this one's; an interrupted drain leaves
	// gaps), however few sessions are there: an absent one costs two
	// connects.
	for i := 0; ok && i < maxConsumers; i++ {
		present, drained := e.drainSession(fmt.Sprintf("%s-c%d", slotPrefix(base, k), i))
		ok = drained
		if !present {
			continue
		}
		ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
		err := e.opts.Slots.RenewReplicaSlot(ctx, k, e.slot.owner, e.opts.SlotTTL)
		cancel()
		if err != nil {
			e.log.Warn("the vacant slot being drained was taken; leaving its sessions to the replica that took it", "slot", k, "err", err)
			return
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), e.opts.CallTimeout)
	defer cancel()
	// Drained: the slot's sessions are gone and its number is free. Not
	// drained (the service failed, or shutdown): vacant again, for later.
	if err := e.opts.Slots.ReleaseReplicaSlot(ctx, k, e.slot.owner, ok); err != nil {
		e.log.Warn("releasing a drained replica slot", "slot", k, "err", err)
	}
	e.log.Info("vacant replica slot drained", "slot", k, "freed", ok)
}

// drainSession resumes session id, leaves the shared subscriptions so that
// nothing new arrives, handles what the session held until it stays quiet,
// and deletes it. present is whether the session existed; drained whether
// everything in it was applied (or dropped as bad) and it is gone.
//
// Quiet means no message being handled and none received for drainQuiet,
// and the session is deleted only after one more resume brought nothing:
// the broker sends what a session holds right after CONNACK. Judging quiet
// by the time since the last message finished lost messages (issue 8: 17
// version reports of 3 000 in a kill -9 run): a handling slower than
// drainQuiet (a loaded store) looked like silence, and the clean-session
// CONNECT that deletes the session discarded what was still queued in it.
func (e *External) drainSession(id string) (present, drained bool) {
	deadline := time.Now().Add(drainBound)
	for round := 0; ; round++ {
		there, received, ok := e.drainRound(id, round == 0, deadline)
		if round == 0 {
			present = there
		}
		if !ok || e.ctx.Err() != nil {
			return present, false
		}
		if !present {
			break // nothing to delete
		}
		if received == 0 && round > 0 {
			break // a resume that brought nothing: the session is empty
		}
		if time.Now().After(deadline) {
			e.log.Warn("draining a vacant slot's session: still receiving at the bound; kept for a later drain", "client_id", id, "bound", drainBound)
			return present, false
		}
	}
	// A clean session's CONNECT discards the stored one.
	wipe := paho.NewClient(e.clientOptions(id, true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(e.opts.ConnectTimeout))
	if t := wipe.Connect(); !t.WaitTimeout(e.opts.ConnectTimeout) || t.Error() != nil {
		e.log.Warn("draining a vacant slot's session: cannot delete it", "client_id", id, "err", t.Error())
		return present, false
	}
	wipe.Disconnect(250)
	return present, true
}

// drainRound resumes session id once (unsubscribing it on the first
// round), handles what arrives until quiet, and disconnects. ok is false
// when something failed (the session is kept).
func (e *External) drainRound(id string, first bool, deadline time.Time) (present bool, received int64, ok bool) {
	var last, count atomic.Int64
	var busy atomic.Int32
	var failed atomic.Bool
	last.Store(time.Now().UnixNano())
	o := e.clientOptions(id, false).SetAutoAckDisabled(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(e.opts.ConnectTimeout)
	// Handled here, in paho's delivery goroutine, one at a time: a drained
	// session holds what a dead replica left, not a stream.
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		busy.Add(1)
		count.Add(1)
		defer func() {
			last.Store(time.Now().UnixNano())
			busy.Add(-1)
		}()
		d := e.dialectOf(m)
		if d == nil {
			return
		}
		if !e.handle(inbound{msg: m, dialect: d, consumer: -1, received: time.Now()}) {
			failed.Store(true)
		}
	})
	c := paho.NewClient(o)
	t := c.Connect()
	if !t.WaitTimeout(e.opts.ConnectTimeout) || t.Error() != nil {
		e.log.Warn("draining a vacant slot's session: cannot connect", "client_id", id, "err", t.Error())
		return true, 0, false
	}
	present = t.(*paho.ConnectToken).SessionPresent()
	if present && first {
		var filters []string
		for _, d := range e.dialects {
			for _, f := range d.Filters() {
				filters = append(filters, "$share/"+e.opts.Group+"/"+f)
			}
		}
		if u := c.Unsubscribe(filters...); !u.WaitTimeout(e.opts.ConnectTimeout) || u.Error() != nil {
			e.log.Warn("draining a vacant slot's session: cannot unsubscribe", "client_id", id, "err", u.Error())
			failed.Store(true)
		}
	}
	if present {
		for (busy.Load() > 0 || time.Since(time.Unix(0, last.Load())) < drainQuiet) && time.Now().Before(deadline) && e.ctx.Err() == nil {
			time.Sleep(drainQuiet / 10)
		}
	}
	c.Disconnect(250)
	if busy.Load() > 0 {
		failed.Store(true) // cut short at the bound: what it held stays for later
	}
	return present, count.Load(), !failed.Load()
}
