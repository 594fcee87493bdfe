package server

import "sync"

// Exported for the tests of package server_test, which serve a member
// through server/api (a package that imports this one).
var (
	TestConfig  = testConfig
	StartMember = startMember
	FreeURL     = freeURL
)

// ApplyGate holds the apply loop of a member before each batch commit
// while it is shut.
type ApplyGate struct {
	mu   sync.Mutex
	shut chan struct{} // nil while open; closed by Open
	// Held receives a value each time a batch is held.
	Held chan struct{}
}

// GateApply installs an open ApplyGate in cfg.
func GateApply(cfg *Config) *ApplyGate {
	g := &ApplyGate{Held: make(chan struct{}, 16)}
	cfg.wrapCommit = func(commit func() error) error {
		g.mu.Lock()
		shut := g.shut
		g.mu.Unlock()
		if shut != nil {
			select {
			case g.Held <- struct{}{}:
			default:
			}
			<-shut
		}
		return commit()
	}
	return g
}

// Shut makes the apply loop stop before its next batch commit.
func (g *ApplyGate) Shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

// Open lets the held batch and every later one through.
func (g *ApplyGate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// ReadRoundsWaitingForApply is how many read rounds wait for the applied
// index to reach their read index.
func ReadRoundsWaitingForApply() int { return len(goroutinesIn("wait.(*Index).WaitDeadline")) }
