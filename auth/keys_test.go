package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	if !strings.HasPrefix(a, KeyPrefix) || len(a) != len(KeyPrefix)+43 {
		t.Fatalf("key %q: want %s and 43 base64url characters", a, KeyPrefix)
	}
	if _, err := HashKey(a, []byte("0123456789abcdef"), DefaultIterations); err != nil {
		t.Fatalf("a generated key must be hashable: %v", err)
	}
}

func TestVerifierRoundTrip(t *testing.T) {
	key, _ := NewKey()
	salt, _ := NewSalt()
	v, err := HashKey(key, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	text := v.String()
	if !strings.HasPrefix(text, "SCRAM-SHA-256$4096:") {
		t.Fatalf("verifier %q does not use PostgreSQL's format", text)
	}
	got, err := ParseVerifier(text)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != text || !bytes.Equal(got.Salt, salt) {
		t.Fatalf("round trip: got %q, want %q", got.String(), text)
	}
	if strings.Contains(text, key) || strings.Contains(text, strings.TrimPrefix(key, KeyPrefix)) {
		t.Fatal("verifier contains the key")
	}
	again, _ := HashKey(key, salt, 4096)
	if again.String() != text {
		t.Fatal("hashing the same key with the same salt must give the same verifier")
	}
}

func TestHashKeyRejectsWeakKeys(t *testing.T) {
	salt, _ := NewSalt()
	for _, key := range []string{"short", strings.Repeat("a", MinKeyLen-1), strings.Repeat("é", 20), "has a space in it, which is not allowed"} {
		if _, err := HashKey(key, salt, 4096); err == nil {
			t.Errorf("HashKey(%q) succeeded", key)
		}
	}
}

func TestParseVerifierErrors(t *testing.T) {
	key, _ := NewKey()
	salt, _ := NewSalt()
	v, _ := HashKey(key, salt, 4096)
	good := v.String()
	for _, bad := range []string{
		"",
		key, // a plaintext key where a verifier belongs
		"md5" + strings.Repeat("0", 32),
		strings.Replace(good, "SCRAM-SHA-256$", "SCRAM-SHA-1$", 1),
		strings.Replace(good, "$4096:", "$0:", 1),
		strings.Replace(good, "$4096:", "$x:", 1),
		good[:strings.LastIndex(good, ":")],
		good + "!",
	} {
		if _, err := ParseVerifier(bad); !errors.Is(err, ErrBadVerifier) {
			t.Errorf("ParseVerifier(%q) = %v, want ErrBadVerifier", bad, err)
		}
	}
}

func TestSameFactors(t *testing.T) {
	k1, _ := NewKey()
	k2, _ := NewKey()
	s1, _ := NewSalt()
	s2, _ := NewSalt()
	a, _ := HashKey(k1, s1, 4096)
	b, _ := HashKey(k2, s1, 4096)
	c, _ := HashKey(k2, s2, 4096)
	d, _ := HashKey(k2, s1, 8192)
	for _, tc := range []struct {
		vs   []Verifier
		want bool
	}{
		{nil, true},
		{[]Verifier{a}, true},
		{[]Verifier{a, b}, true},
		{[]Verifier{a, c}, false},
		{[]Verifier{a, d}, false},
	} {
		if got := SameFactors(tc.vs); got != tc.want {
			t.Errorf("SameFactors(%d verifiers) = %v, want %v", len(tc.vs), got, tc.want)
		}
	}
}
