package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"
)

// cancelKey is the BackendKeyData the proxy gives a client in place of its upstream backend's: clients
// never learn upstream process ids or keys, and a key is only good for the session it was issued to.
type cancelKey struct {
	pid    uint32
	secret [4]byte // protocol 3.0 keys are 4 bytes
}

// cancelRegistry maps issued keys to their sessions, and upstream backends to the process ids the proxy
// gave their clients.
type cancelRegistry struct {
	mu       sync.Mutex
	sessions map[uint32]*session
	backends map[uint32]uint32
}

// register issues a fresh key to s and stores it in s.key.
func (r *cancelRegistry) register(s *session) {
	var k cancelKey
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions == nil {
		r.sessions, r.backends = map[uint32]*session{}, map[uint32]uint32{}
	}
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])                              // crypto/rand.Read never fails on supported platforms
		k.pid = binary.BigEndian.Uint32(b[:4]) &^ (1 << 31) // positive, like a real process id
		copy(k.secret[:], b[4:])
		if _, taken := r.sessions[k.pid]; !taken && k.pid != 0 {
			s.key = k
			r.sessions[k.pid] = s
			r.backends[s.backendPID] = k.pid
			return
		}
	}
}

// unregister removes s's key, if it was issued one.
func (r *cancelRegistry) unregister(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[s.key.pid] == s {
		delete(r.sessions, s.key.pid)
		delete(r.backends, s.backendPID)
	}
}

// proxyPID returns the process id the proxy gave the client of an upstream backend, or 0 when the backend
// is not one of the proxy's sessions: clients never learn upstream process ids.
func (r *cancelRegistry) proxyPID(backend uint32) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backends[backend]
}

// lookup returns the session holding key (pid, secret), or nil.
func (r *cancelRegistry) lookup(pid uint32, secret []byte) *session {
	r.mu.Lock()
	s := r.sessions[pid]
	r.mu.Unlock()
	if s == nil || subtle.ConstantTimeCompare(s.key.secret[:], secret) != 1 {
		return nil
	}
	return s
}

// cancel forwards a CancelRequest to the upstream backend of the session it names. As in PostgreSQL, a
// request with an unknown key is ignored and the requester learns nothing either way.
func (srv *Server) cancel(ctx context.Context, req *pgproto3.CancelRequest, log *zap.Logger) {
	s := srv.cancels.lookup(req.ProcessID, req.SecretKey)
	if s == nil {
		log.Info("cancel request with unknown key ignored")
		return
	}
	if err := s.cancelUpstream(ctx); err != nil {
		s.log.Warn("forwarding cancel request failed", zap.Error(err))
		return
	}
	s.log.Info("cancel request forwarded")
}
