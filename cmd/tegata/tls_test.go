package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA writes a private CA's certificate (ca.pem) and a certificate for
// 127.0.0.1 it signed (cert.pem, key.pem) into dir.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tegata test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: leafDER}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// TestTLSAndCAFile: an authority and a gate serve HTTPS with a private
// CA's certificate (--tls-cert, --tls-key); the operator commands and the
// gate reach the authority only when told to trust that CA (--ca-file,
// TEGATA_CA_FILE).
func TestTLSAndCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, cert, key := testCA(t, t.TempDir())
	p := serveArgs(t, dir, []string{"--tls-cert", cert, "--tls-key", key}, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=", "TEGATA_FEED_KEY="+testFeedKey)
	url := p.URL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("authority URL = %s, want https://", url)
	}
	ops := []string{"TEGATA_AUTHORITY=" + url, "TEGATA_DATA=" + dir, "TEGATA_API_KEY="}
	if out, code := run(t, ops, "apikeys", "list"); code == 0 || !strings.Contains(out, "certificate") {
		t.Errorf("apikeys list without the CA = exit %d, want a certificate error:\n%s", code, out)
	}
	if out, code := run(t, append(ops, "TEGATA_CA_FILE="+caFile), "apikeys", "list"); code != 0 {
		t.Errorf("apikeys list with TEGATA_CA_FILE = exit %d, want 0:\n%s", code, out)
	}

	_, gurl := startGate(t, []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY="},
		"--authority", url, "--ca-file", caFile, "--tls-cert", cert, "--tls-key", key)
	gurl = strings.Replace(gurl, "http://", "https://", 1)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	poll(t, "the gate to answer /readyz 200 over HTTPS, following the authority over HTTPS", func() bool {
		res, err := c.Get(gurl + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}
