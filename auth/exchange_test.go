package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"
)

// login runs a whole SCRAM exchange between a real SCRAM client holding key and ex.
func login(t *testing.T, ex *Exchange, key, mechanism string, clientCB *scram.ChannelBinding) error {
	t.Helper()
	client, err := scram.SHA256.NewClient("", key, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	if clientCB != nil {
		conv = client.NewConversationWithChannelBinding(*clientCB)
	}
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	serverFirst, err := ex.Start(mechanism, []byte(first))
	if err != nil {
		return err
	}
	final, err := conv.Step(string(serverFirst))
	if err != nil {
		return err
	}
	serverFinal, err := ex.Finish([]byte(final))
	if err != nil {
		return err
	}
	// The client checks the server's signature: the server must know the verifier, not just accept.
	if _, err := conv.Step(string(serverFinal)); err != nil {
		t.Fatalf("client rejected the server's final message: %v", err)
	}
	return nil
}

func keys(t *testing.T, n int) ([]string, []Verifier) {
	t.Helper()
	salt, _ := NewSalt()
	var ks []string
	var vs []Verifier
	for range n {
		k, _ := NewKey()
		v, err := HashKey(k, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		ks, vs = append(ks, k), append(vs, v)
	}
	return ks, vs
}

func TestExchangeAcceptsEveryKeyOfTheWorkspace(t *testing.T) {
	ks, vs := keys(t, 3)
	for i, k := range ks {
		ex := NewExchange("acme", vs, []byte("secret"), scram.ChannelBinding{})
		if _, ok := ex.Matched(); ok {
			t.Errorf("key %d: Matched before the exchange", i)
		}
		if err := login(t, ex, k, MechanismSCRAM, nil); err != nil {
			t.Errorf("key %d: %v", i, err)
		}
		// The exchange tells which key it was, so revoking that key can end the session.
		if m, ok := ex.Matched(); !ok || !m.Equal(vs[i]) {
			t.Errorf("key %d: Matched() = %v, %v; want verifier %d", i, m, ok, i)
		}
	}
}

func TestExchangeRejectsWrongKey(t *testing.T) {
	_, vs := keys(t, 2)
	other, _ := NewKey()
	err := login(t, NewExchange("acme", vs, []byte("secret"), scram.ChannelBinding{}), other, MechanismSCRAM, nil)
	if err != ErrAuthFailed {
		t.Fatalf("got %v, want ErrAuthFailed", err)
	}
}

func TestExchangeDecoy(t *testing.T) {
	key, _ := NewKey()
	serverFirst := func(user string, secret []byte) string {
		client, _ := scram.SHA256.NewClient("", key, "")
		first, _ := client.NewConversation().Step("")
		sf, err := NewExchange(user, nil, secret, scram.ChannelBinding{}).Start(MechanismSCRAM, []byte(first))
		if err != nil {
			t.Fatal(err)
		}
		return string(sf)
	}
	salt := func(sf string) string {
		for _, f := range strings.Split(sf, ",") {
			if s, ok := strings.CutPrefix(f, "s="); ok {
				return s
			}
		}
		t.Fatalf("no salt in %q", sf)
		return ""
	}
	secret := []byte("process secret")
	if salt(serverFirst("ghost", secret)) != salt(serverFirst("ghost", secret)) {
		t.Fatal("an unknown workspace's salt must be stable, or its absence shows")
	}
	if salt(serverFirst("ghost", secret)) == salt(serverFirst("phantom", secret)) {
		t.Fatal("different unknown workspaces should get different salts, like real ones")
	}
	if err := login(t, NewExchange("ghost", nil, secret, scram.ChannelBinding{}), key, MechanismSCRAM, nil); err != ErrAuthFailed {
		t.Fatalf("decoy login: got %v, want ErrAuthFailed", err)
	}
}

func TestExchangeChannelBinding(t *testing.T) {
	cert := selfSigned(t)
	cb, ok := ChannelBinding(cert)
	if !ok {
		t.Fatal("no channel binding for an ECDSA-SHA256 certificate")
	}
	ks, vs := keys(t, 1)
	ex := func() *Exchange { return NewExchange("acme", vs, []byte("s"), cb) }
	if got := ex().Mechanisms(); len(got) != 2 || got[0] != MechanismSCRAMPlus {
		t.Fatalf("Mechanisms() = %v, want PLUS first", got)
	}
	if err := login(t, ex(), ks[0], MechanismSCRAMPlus, &cb); err != nil {
		t.Fatalf("PLUS with the right binding: %v", err)
	}
	wrong := scram.ChannelBinding{Type: cb.Type, Data: append([]byte{1}, cb.Data[1:]...)}
	if err := login(t, ex(), ks[0], MechanismSCRAMPlus, &wrong); err == nil {
		t.Fatal("PLUS with another certificate's binding succeeded (a man in the middle would pass)")
	}
	if err := login(t, ex(), ks[0], MechanismSCRAM, nil); err != nil {
		t.Fatalf("plain SCRAM from a client without channel binding support: %v", err)
	}
	if _, err := NewExchange("acme", vs, []byte("s"), scram.ChannelBinding{}).Start(MechanismSCRAMPlus, []byte("p=tls-server-end-point,,n=,r=abc")); err == nil {
		t.Fatal("PLUS accepted on a connection without TLS")
	}
	if _, err := ex().Start(MechanismSCRAM, []byte("p=tls-server-end-point,,n=,r=abc")); err == nil {
		t.Fatal("channel binding data accepted with the non-PLUS mechanism")
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tenantproxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
