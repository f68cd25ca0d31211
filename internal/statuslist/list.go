package statuslist

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Status values of draft-ietf-oauth-status-list-21 §7.1.
const (
	Valid   byte = 0x00
	Invalid byte = 0x01
)

// MaxDecoded bounds what Decode inflates: a hostile lst of a few kilobytes
// could otherwise expand to gigabytes.
const MaxDecoded = 16 << 20

// List is the byte array of §4.1: statuses of Size() tokens, Bits() bits
// each, packed from the least significant bit of each byte. Not safe for
// concurrent use.
type List struct {
	bits int
	data []byte
}

// New returns a list of size entries, all VALID, of bits 1, 2, 4 or 8 per
// entry. size*bits must be a multiple of 8 (the draft recommends whole
// bytes, and it keeps Size exact after a decode).
func New(bits, size int) (*List, error) {
	if !validBits(bits) {
		return nil, fmt.Errorf("statuslist: bits must be 1, 2, 4 or 8, not %d", bits)
	}
	if size <= 0 || size*bits%8 != 0 {
		return nil, fmt.Errorf("statuslist: size %d with %d bits is not a whole number of bytes", size, bits)
	}
	return &List{bits: bits, data: make([]byte, size*bits/8)}, nil
}

func validBits(b int) bool { return b == 1 || b == 2 || b == 4 || b == 8 }

// Bits is the number of bits per entry.
func (l *List) Bits() int { return l.bits }

// Size is the number of entries.
func (l *List) Size() int { return len(l.data) * 8 / l.bits }

// ErrIndex: the index lies outside the list. §8.3 says a Relying Party must
// then reject the token.
var ErrIndex = errors.New("statuslist: index out of range")

// position returns the byte and the bit shift of entry idx.
func (l *List) position(idx int) (int, uint, error) {
	if idx < 0 || idx >= l.Size() {
		return 0, 0, fmt.Errorf("%w: %d not in [0, %d)", ErrIndex, idx, l.Size())
	}
	bit := idx * l.bits
	return bit / 8, uint(bit % 8), nil
}

func (l *List) mask() byte { return byte(1<<l.bits - 1) }

// Get returns the status of entry idx.
func (l *List) Get(idx int) (byte, error) {
	i, shift, err := l.position(idx)
	if err != nil {
		return 0, err
	}
	return l.data[i] >> shift & l.mask(), nil
}

// Set sets the status of entry idx; status must fit in Bits() bits.
func (l *List) Set(idx int, status byte) error {
	if status > l.mask() {
		return fmt.Errorf("statuslist: status %#x does not fit in %d bits", status, l.bits)
	}
	i, shift, err := l.position(idx)
	if err != nil {
		return err
	}
	l.data[i] = l.data[i]&^(l.mask()<<shift) | status<<shift
	return nil
}

// Bytes returns the uncompressed byte array (shared, not a copy).
func (l *List) Bytes() []byte { return l.data }

// Encode returns lst: the byte array compressed with DEFLATE in the ZLIB
// format at the highest level (§4.1 step 4), base64url without padding.
func (l *List) Encode() string {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		panic(err) // only for an invalid level
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(l.data)
	_ = w.Close()
	return base64.RawURLEncoding.EncodeToString(buf.Bytes())
}

// Decode reads lst as §4.2 defines it: base64url (no padding) of a ZLIB
// stream. It is how Relying Parties read a list, and how the tests check
// tegata's lists against the draft's own.
func Decode(bits int, lst string) (*List, error) {
	if !validBits(bits) {
		return nil, fmt.Errorf("statuslist: bits must be 1, 2, 4 or 8, not %d", bits)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(lst)
	if err != nil {
		return nil, fmt.Errorf("statuslist: lst is not base64url: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("statuslist: lst is not a zlib stream: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, MaxDecoded+1))
	if err != nil {
		return nil, fmt.Errorf("statuslist: inflate lst: %w", err)
	}
	if len(data) > MaxDecoded {
		return nil, fmt.Errorf("statuslist: lst inflates to more than %d bytes", MaxDecoded)
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("statuslist: lst checksum: %w", err)
	}
	return &List{bits: bits, data: data}, nil
}
