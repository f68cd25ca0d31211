package server

import (
	"errors"
	"fmt"
	"net"

	"github.com/tegata-dev/tegata/internal/feed"
)

// checkConfig refuses what would make Start fail later, before Start
// listens or touches the disk: the settings (CheckSettings) and malformed
// secrets in the environment.
func checkConfig(cfg Config) (envSecrets, error) {
	if err := CheckSettings(cfg); err != nil {
		return envSecrets{}, err
	}
	return checkEnvSecrets(cfg)
}

// CheckSettings refuses the settings in cfg that Start would refuse, before
// anything is opened: a --db that is not a Postgres URL, an unknown
// after-restore policy, authority settings authority.New would refuse. The
// CLI calls it to answer with a usage error.
func CheckSettings(cfg Config) error {
	if cfg.DB != "" && !isPostgres(cfg.DB) {
		// The value is not echoed: a key=value DSN carries its password
		// where no URL syntax marks it.
		return errors.New("--db must be a postgres:// URL (or empty for embedded SQLite)")
	}
	if cfg.Pprof && cfg.MetricsAddr == "" {
		return errors.New("--pprof needs --metrics-addr: profiles are served on the metrics listener only, never on --addr")
	}
	if cfg.SQLiteMaxSize < 0 {
		return errors.New("--sqlite-max-size must not be negative")
	}
	if err := checkAfterRestore(cfg.AfterRestore); err != nil {
		return err
	}
	if cfg.AdvertiseURL != "" {
		if _, err := feed.CleanNodeURL(cfg.AdvertiseURL); err != nil {
			return fmt.Errorf("--advertise-url: %w", err)
		}
	}
	if cfg.Authority.Clock != nil {
		return errors.New("server: Config.Authority.Clock is set: give the node its clock as Config.Clock, which times the timers of its other parts too")
	}
	ac := cfg.Authority
	ac.Issuer = firstNonEmpty(cfg.Issuer, ac.Issuer, "http://"+cfg.Addr)
	return ac.Validate()
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
