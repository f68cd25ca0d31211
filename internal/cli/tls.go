package cli

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"

	"github.com/tegata-dev/tegata/internal/feed"
)

// trustCA makes this process trust the CA certificates of the PEM file
// (besides the system's) for https:// authorities: the operator commands'
// and the gate's web session calls go through http.DefaultTransport, which
// it changes (the process is tegata's own), and the returned client, for a
// verifier, carries them too on the feed's transport. Empty file: nil,
// nothing changes.
func trustCA(file string) (*http.Client, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr("--ca-file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, usageErr("--ca-file %s holds no PEM certificate", file)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.TLSClientConfig = tc
	}
	ft := feed.DefaultTransport()
	ft.TLSClientConfig = tc.Clone()
	return &http.Client{Transport: ft}, nil
}

// serverTLS loads --tls-cert and --tls-key for a listener; nil when
// neither is set.
func serverTLS(cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, usageErr("--tls-cert and --tls-key go together")
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, usageErr("--tls-cert/--tls-key: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}
