package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// KeyPrefix starts every API key NewKey generates, so keys are recognisable in secret scanners.
const KeyPrefix = "tpk_"

// DefaultIterations is the PBKDF2 iteration count of new verifiers; it is PostgreSQL's default
// scram_iterations.
const DefaultIterations = 4096

const (
	saltLen    = 16
	keyEntropy = 32 // bytes of randomness in a generated key
	// MinKeyLen is the shortest key HashKey accepts. Keys are the only secret between a workspace and its
	// data and, unlike passwords, are never typed: refusing short ones keeps a leaked verifier from being
	// brute-forced.
	MinKeyLen = 24
)

// ErrBadVerifier is returned (wrapped) when a verifier string is not in PostgreSQL's SCRAM-SHA-256 format.
var ErrBadVerifier = errors.New("invalid SCRAM-SHA-256 verifier")

// Verifier is what the server stores for one API key: enough to check a client's SCRAM proof, not enough
// to recover the key or to log in with it.
type Verifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// Equal reports whether v and o are the same verifier.
func (v Verifier) Equal(o Verifier) bool {
	return v.Iterations == o.Iterations && bytes.Equal(v.Salt, o.Salt) && bytes.Equal(v.StoredKey, o.StoredKey) &&
		bytes.Equal(v.ServerKey, o.ServerKey)
}

// NewKey returns a fresh random API key.
func NewKey() (string, error) {
	b := make([]byte, keyEntropy)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// NewSalt returns a fresh random salt.
func NewSalt() ([]byte, error) {
	b := make([]byte, saltLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating salt: %w", err)
	}
	return b, nil
}

// HashKey computes the verifier of key with the given salt and iteration count. Keys of one workspace must
// share salt and iterations (see SameFactors), so rotating a key means hashing the new one with the salt
// of the existing ones.
func HashKey(key string, salt []byte, iterations int) (Verifier, error) {
	if len(key) < MinKeyLen {
		return Verifier{}, fmt.Errorf("key is %d characters; at least %d are required", len(key), MinKeyLen)
	}
	for _, r := range key {
		// Printable ASCII only: SASLprep is then the identity, so every client library derives the same
		// salted password from the key as we do.
		if r < 0x21 || r > 0x7e {
			return Verifier{}, errors.New("key must be printable ASCII without spaces")
		}
	}
	if len(salt) == 0 || iterations < 1 {
		return Verifier{}, errors.New("salt and a positive iteration count are required")
	}
	client, err := scram.SHA256.NewClient("", key, "")
	if err != nil {
		return Verifier{}, fmt.Errorf("preparing key: %w", err)
	}
	creds, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return Verifier{}, fmt.Errorf("deriving verifier: %w", err)
	}
	return Verifier{Iterations: iterations, Salt: bytes.Clone(salt), StoredKey: creds.StoredKey, ServerKey: creds.ServerKey}, nil
}

// ParseVerifier parses PostgreSQL's text form "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>".
func ParseVerifier(s string) (Verifier, error) {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return Verifier{}, fmt.Errorf("%w: must start with SCRAM-SHA-256$", ErrBadVerifier)
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return Verifier{}, fmt.Errorf("%w: missing $ between salt and keys", ErrBadVerifier)
	}
	iterText, saltText, ok1 := strings.Cut(factors, ":")
	storedText, serverText, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return Verifier{}, fmt.Errorf("%w: want <iterations>:<salt>$<StoredKey>:<ServerKey>", ErrBadVerifier)
	}
	var v Verifier
	var err error
	if v.Iterations, err = strconv.Atoi(iterText); err != nil || v.Iterations < 1 {
		return Verifier{}, fmt.Errorf("%w: bad iteration count %q", ErrBadVerifier, iterText)
	}
	for _, f := range []struct {
		dst  *[]byte
		text string
		name string
		size int
	}{
		{&v.Salt, saltText, "salt", 0},
		{&v.StoredKey, storedText, "StoredKey", 32},
		{&v.ServerKey, serverText, "ServerKey", 32},
	} {
		b, err := base64.StdEncoding.DecodeString(f.text)
		if err != nil || len(b) == 0 || (f.size > 0 && len(b) != f.size) {
			return Verifier{}, fmt.Errorf("%w: bad %s", ErrBadVerifier, f.name)
		}
		*f.dst = b
	}
	return v, nil
}

// String returns the verifier in PostgreSQL's text form.
func (v Verifier) String() string {
	enc := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations,
		enc.EncodeToString(v.Salt), enc.EncodeToString(v.StoredKey), enc.EncodeToString(v.ServerKey))
}

// SameFactors reports whether all verifiers share salt and iteration count. A SCRAM server announces one
// salt before it learns anything about the key, so only verifiers that share it can be tried in one
// exchange.
func SameFactors(vs []Verifier) bool {
	for _, v := range vs[min(1, len(vs)):] {
		if v.Iterations != vs[0].Iterations || !bytes.Equal(v.Salt, vs[0].Salt) {
			return false
		}
	}
	return true
}
