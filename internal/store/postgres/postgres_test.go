package postgres

import (
	"testing"

	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/storetest"
)

// TestPostgres runs the contract suite; every subtest gets a fresh schema.
func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return OpenTestStore(t) })
}
