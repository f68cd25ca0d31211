package cli

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// offDuration is a duration flag writing straight into a config field under
// tegata's configuration rule (docs/packages.md: zero is the default, a
// negative value is off). A flag always has a value, so on the command
// line 0 cannot mean "the default": 0 or "off" turns the setting off, and
// the default shows in -help.
type offDuration struct {
	d   *time.Duration
	def time.Duration
}

func (f offDuration) String() string {
	switch {
	case f.d == nil || *f.d == 0:
		return f.def.String()
	case *f.d < 0:
		return "off"
	}
	return f.d.String()
}

func (f offDuration) Set(s string) error {
	if s == "off" || s == "0" {
		*f.d = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("must not be negative (0 or off turns it off)")
	}
	*f.d = d
	return nil
}

// offInt is offDuration for a count.
type offInt struct {
	n   *int
	def int
}

func (f offInt) String() string {
	switch {
	case f.n == nil || *f.n == 0:
		return strconv.Itoa(f.def)
	case *f.n < 0:
		return "off"
	}
	return strconv.Itoa(*f.n)
}

func (f offInt) Set(s string) error {
	if s == "off" || s == "0" {
		*f.n = -1
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a number")
	}
	if n < 0 {
		return errors.New("must not be negative (0 or off turns it off)")
	}
	*f.n = n
	return nil
}

// offFloat is offDuration for a rate.
type offFloat struct {
	x   *float64
	def float64
}

func (f offFloat) String() string {
	switch {
	case f.x == nil || *f.x == 0:
		return strconv.FormatFloat(f.def, 'g', -1, 64)
	case *f.x < 0:
		return "off"
	}
	return strconv.FormatFloat(*f.x, 'g', -1, 64)
}

func (f offFloat) Set(s string) error {
	if s == "off" {
		*f.x = -1
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(x) || math.IsInf(x, 0):
		return errors.New("not a number")
	case x < 0:
		return errors.New("must not be negative (0 or off turns it off)")
	case x == 0:
		*f.x = -1
	default:
		*f.x = x
	}
	return nil
}
