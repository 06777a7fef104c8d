package service

// A new job waits for the rollout engine's next tick before its first
// notice goes out: up to a whole interval (1 s), which was most of the
// time to notify 10 000 online devices (bench/notify). The replica that
// creates the job wakes its own engine instead; other replicas still pick
// the job up at their next tick.

// SetEngineWake registers the function that makes this replica's rollout
// engine tick now (rollout.Engine.Wake). It must not block.
func (s *Service) SetEngineWake(fn func()) { s.wake.Store(&fn) }

func (s *Service) wakeEngine() {
	if fn := s.wake.Load(); fn != nil {
		(*fn)()
	}
}
