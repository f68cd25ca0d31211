package revocation

// sidLen is the length of a session id as tegata issues it: 16 random bytes
// base64url-encoded without padding.
const sidLen = 22

// b64url maps a base64url character to its 6-bit value, or 0xff.
var b64url = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeSID decodes a canonical 22-character base64url session id into its
// 16 bytes, as two big-endian words. It accepts only canonical encodings
// (the 4 unused low bits of the last character are zero) so that distinct
// strings never share a key; any other string is reported as !ok and kept
// under its string form instead. The all-zero key is refused too: it marks
// an empty slot in keyTable. Hand-written because it runs on every lookup
// and must not allocate.
func decodeSID(s string) (k0, k1 uint64, ok bool) {
	if len(s) != sidLen {
		return 0, 0, false
	}
	// 22 characters carry 132 bits: 64 + 64 + 4 unused. Invalid characters
	// map to 0xff, whose high bits show in bad.
	var bad byte
	for i := 0; i < 10; i++ {
		c := b64url[s[i]]
		bad |= c
		k0 = k0<<6 | uint64(c)
	}
	for i := 11; i < 21; i++ {
		c := b64url[s[i]]
		bad |= c
		k1 = k1<<6 | uint64(c)
	}
	c10, c21 := b64url[s[10]], b64url[s[21]]
	if (bad|c10|c21)&0xc0 != 0 || c21&0x0f != 0 {
		return 0, 0, false
	}
	k0 = k0<<4 | uint64(c10>>2)
	k1 = uint64(c10&3)<<62 | k1<<2 | uint64(c21>>4)
	return k0, k1, k0|k1 != 0
}
