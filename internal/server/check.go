package server

import (
	"errors"
	"net"
)

// checkConfig refuses what would make Start fail later, before Start
// listens or touches the disk: a --db that is not a Postgres URL, authority
// settings authority.New would refuse, malformed secrets in the
// environment.
func checkConfig(cfg Config) (envSecrets, error) {
	if cfg.DB != "" && !isPostgres(cfg.DB) {
		// The value is not echoed: a key=value DSN carries its password
		// where no URL syntax marks it.
		return envSecrets{}, errors.New("--db must be a postgres:// URL (or empty for embedded SQLite)")
	}
	if err := checkAfterRestore(cfg.AfterRestore); err != nil {
		return envSecrets{}, err
	}
	ac := cfg.Authority
	ac.Issuer = firstNonEmpty(cfg.Issuer, ac.Issuer, "http://"+cfg.Addr)
	if err := ac.Validate(); err != nil {
		return envSecrets{}, err
	}
	return checkEnvSecrets(cfg)
}

// warnUnreachableIssuer warns when the authority listens on every
// interface and, given no issuer, names itself by that address: its tokens
// then carry an issuer such as http://[::]:8080, which is nobody's URL for
// it and changes with the listen address.
func warnUnreachableIssuer(cfg Config, addr net.Addr, url string) {
	if cfg.Issuer != "" || cfg.Authority.Issuer != "" {
		return
	}
	if tcp, ok := addr.(*net.TCPAddr); !ok || !tcp.IP.IsUnspecified() {
		return
	}
	cfg.Logger.Warn("listening on every interface without --issuer: tokens will carry the issuer "+url+
		"; set --issuer (TEGATA_ISSUER) to the URL clients and verifiers reach this authority by", "issuer", url)
}
