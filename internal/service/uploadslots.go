package service

import (
	"strconv"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Concurrent uploads (package files and objects, from every API) are
// bounded twice: per tenant, so that one tenant's scripts cannot hold every
// slot, and per server, which bounds what uploads in flight cost (a buffer
// per upload: the S3 store holds a 16 MiB part for each). A refused upload
// is CodeRateLimited, refused before any byte of its file is read, with a
// Retry-After hint; each API answers it in its throttling form. The slots
// live in each replica's memory: every replica limits what it receives.
const (
	DefaultMaxUploads          = 16
	DefaultMaxUploadsPerTenant = 4
	// uploadRetryAfter is the hint given with a refusal: uploads take
	// seconds to minutes, so a slot frees up on that scale.
	uploadRetryAfter = 5 * time.Second
)

type uploadSlots struct {
	mu        sync.Mutex
	max       int // server-wide; < 0 = no limit
	perTenant int // < 0 = no limit
	total     int
	byTenant  map[string]int
}

// take holds a slot for tenant until release is called.
func (u *uploadSlots) take(tenant string) (release func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.perTenant >= 0 && u.byTenant[tenant] >= u.perTenant {
		return nil, &ota.Error{Code: ota.CodeRateLimited, RetryAfter: uploadRetryAfter,
			Message: "this tenant already has " + strconv.Itoa(u.perTenant) + " uploads in progress (the server's limit per tenant): retry when one has finished"}
	}
	if u.max >= 0 && u.total >= u.max {
		return nil, &ota.Error{Code: ota.CodeRateLimited, RetryAfter: uploadRetryAfter,
			Message: "the server is receiving " + strconv.Itoa(u.max) + " uploads already (its limit): retry in a few seconds"}
	}
	if u.byTenant == nil {
		u.byTenant = map[string]int{}
	}
	u.total++
	u.byTenant[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			u.total--
			if u.byTenant[tenant]--; u.byTenant[tenant] <= 0 {
				delete(u.byTenant, tenant)
			}
		})
	}, nil
}
