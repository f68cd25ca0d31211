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
// 16 bytes. It accepts only canonical encodings (the 4 unused low bits of the
// last character are zero) so that distinct strings never share a key; any
// other string is reported as !ok and kept under its string form instead.
// The all-zero key is refused too: it marks an empty slot in keyTable.
// Hand-written because it runs on every lookup and must not allocate.
func decodeSID(s string) (k [16]byte, ok bool) {
	if len(s) != sidLen {
		return k, false
	}
	for g := 0; g < 5; g++ {
		a, b, c, d := b64url[s[4*g]], b64url[s[4*g+1]], b64url[s[4*g+2]], b64url[s[4*g+3]]
		if (a|b|c|d)&0xc0 != 0 { // 0xff (invalid) has the high bits set
			return k, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		k[3*g], k[3*g+1], k[3*g+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b := b64url[s[20]], b64url[s[21]]
	if (a|b)&0xc0 != 0 || b&0x0f != 0 {
		return k, false
	}
	k[15] = a<<2 | b>>4
	return k, k != [16]byte{}
}
