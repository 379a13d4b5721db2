package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// SASL mechanism names as PostgreSQL spells them in AuthenticationSASL.
const (
	MechanismSCRAM     = "SCRAM-SHA-256"
	MechanismSCRAMPlus = "SCRAM-SHA-256-PLUS"
)

// ErrAuthFailed is returned when the client did not prove knowledge of a key of the workspace, for
// whatever reason (unknown workspace, wrong key, malformed or replayed message, channel binding mismatch).
// Callers must not tell the client more than that.
var ErrAuthFailed = errors.New("authentication failed")

// ChannelBinding returns the tls-server-end-point channel binding (RFC 5929) for a server presenting cert,
// or ok=false when cert's signature algorithm has no defined binding (then only SCRAM-SHA-256 is offered).
func ChannelBinding(cert *x509.Certificate) (cb scram.ChannelBinding, ok bool) {
	if cert == nil {
		return scram.ChannelBinding{}, false
	}
	// The library computes the binding from the point of view of a client, hashing the peer's certificate;
	// our certificate is exactly what the client sees as its peer's.
	cb, err := scram.NewTLSServerEndpointBinding(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}})
	return cb, err == nil
}

// Exchange is the server side of one SCRAM-SHA-256 authentication. Use Mechanisms for the
// AuthenticationSASL message, Start with the client's SASLInitialResponse and Finish with its SASLResponse.
type Exchange struct {
	verifiers []Verifier
	cb        scram.ChannelBinding
	convs     []*scram.ServerConversation
	matched   int // index of the verifier the key matched, -1 until Finish succeeds
}

// NewExchange prepares an exchange that accepts a key matching any of verifiers, which must share salt and
// iterations (SameFactors). With no verifiers — an unknown workspace — the exchange runs against a decoy
// derived from user and decoySecret: the client sees a stable salt and the usual flow, and then fails like
// a wrong key, so probing user names reveals nothing. cb is the channel binding of the TLS connection, or
// the zero value for a plaintext one.
func NewExchange(user string, verifiers []Verifier, decoySecret []byte, cb scram.ChannelBinding) *Exchange {
	if len(verifiers) == 0 {
		verifiers = []Verifier{decoy(user, decoySecret)}
	}
	return &Exchange{verifiers: verifiers, cb: cb, matched: -1}
}

// decoy returns a verifier no key matches, with a salt that is stable for user (a salt that changed between
// attempts would itself reveal that the workspace does not exist).
func decoy(user string, secret []byte) Verifier {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("tenantproxy decoy salt\x00" + user))
	salt := mac.Sum(nil)[:saltLen]
	keys := make([]byte, 64)
	_, _ = rand.Read(keys) // crypto/rand.Read never fails on supported platforms
	return Verifier{Iterations: DefaultIterations, Salt: salt, StoredKey: keys[:32], ServerKey: keys[32:]}
}

// Mechanisms lists the SASL mechanisms to offer, best first.
func (e *Exchange) Mechanisms() []string {
	if e.cb.IsSupported() {
		return []string{MechanismSCRAMPlus, MechanismSCRAM}
	}
	return []string{MechanismSCRAM}
}

// Start consumes the client-first-message sent with mechanism and returns the server-first-message.
func (e *Exchange) Start(mechanism string, clientFirst []byte) ([]byte, error) {
	switch {
	case mechanism == MechanismSCRAMPlus && e.cb.IsSupported():
	case mechanism == MechanismSCRAM:
		// RFC 5802 §6: a client that binds the channel must use the -PLUS mechanism.
		if len(clientFirst) > 0 && clientFirst[0] == 'p' {
			return nil, fmt.Errorf("%w: channel binding requested with %s", ErrAuthFailed, mechanism)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported SASL mechanism %q", ErrAuthFailed, mechanism)
	}

	// One conversation per verifier, all announcing the same nonce, salt and iteration count, so they
	// produce the same server-first-message; Finish accepts the proof if any of them does.
	nonce := newNonce()
	var serverFirst string
	for i := range e.verifiers {
		v := e.verifiers[i]
		lookup := func(string) (scram.StoredCredentials, error) {
			// The SCRAM user name is ignored, as PostgreSQL does: the startup message named the workspace.
			return scram.StoredCredentials{
				KeyFactors: scram.KeyFactors{Salt: string(v.Salt), Iters: v.Iterations},
				StoredKey:  v.StoredKey,
				ServerKey:  v.ServerKey,
			}, nil
		}
		srv, err := scram.SHA256.NewServer(lookup)
		if err != nil {
			return nil, fmt.Errorf("creating SCRAM server: %w", err)
		}
		srv = srv.WithNonceGenerator(func() string { return nonce })
		conv := srv.NewConversationWithChannelBinding(e.cb)
		msg, err := conv.Step(string(clientFirst))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuthFailed, err)
		}
		if i > 0 && msg != serverFirst {
			return nil, errors.New("verifiers of one workspace do not share salt and iterations")
		}
		serverFirst = msg
		e.convs = append(e.convs, conv)
	}
	return []byte(serverFirst), nil
}

// Finish consumes the client-final-message and returns the server-final-message, or ErrAuthFailed.
func (e *Exchange) Finish(clientFinal []byte) ([]byte, error) {
	for i, conv := range e.convs {
		msg, err := conv.Step(string(clientFinal))
		if err == nil && conv.Valid() {
			e.matched = i
			return []byte(msg), nil
		}
	}
	return nil, ErrAuthFailed
}

// Matched returns the verifier the client's key matched, after Finish succeeded: revoking that key (removing
// the verifier) ends the sessions it opened.
func (e *Exchange) Matched() (Verifier, bool) {
	if e.matched < 0 {
		return Verifier{}, false
	}
	return e.verifiers[e.matched], true
}

func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawStdEncoding.EncodeToString(b)
}
