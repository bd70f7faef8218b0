package legacy

import (
	"bytes"
	"strconv"

	"github.com/fleetgate/fleetgate/ident"
)

// checkText validates an identifier-like string (device number, kind,
// firmware, reason) by the rule of package ident, which the router's
// identity check applies to device ids too.
func checkText(field, s string) error {
	if problem := ident.Problem(s, ident.MaxLen); problem != "" {
		return fieldErr(field, problem)
	}
	return nil
}

// jsonString returns the string value of raw.
func jsonString(field string, raw []byte) (string, error) {
	if kindOf(raw) != kindString {
		return "", fieldErr(field, "must be a string")
	}
	return unquote(raw), nil
}

// jsonText returns raw as a string that passes checkText.
func jsonText(field string, raw []byte) (string, error) {
	s, err := jsonString(field, raw)
	if err != nil {
		return "", err
	}
	return s, checkText(field, s)
}

// jsonNumber checks that raw is a number.
func jsonNumber(field string, raw []byte) error {
	if kindOf(raw) != kindNumber {
		return fieldErr(field, "must be a number")
	}
	return nil
}

// jsonUint returns raw as a non-negative integer that fits int64. Epoch
// milliseconds, sequence numbers and counts must be written as integers
// (1763779999000, not 1.763779999e12), so they are never rounded.
func jsonUint(field string, raw []byte) (int64, error) {
	if kindOf(raw) != kindNumber || bytes.ContainsAny(raw, ".eE") {
		return 0, fieldErr(field, "must be a non-negative integer")
	}
	if raw[0] == '-' {
		return 0, fieldErr(field, "must be a non-negative integer")
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fieldErr(field, "out of range")
	}
	return n, nil
}

// jsonRange checks that raw is a number within [lo, hi].
func jsonRange(field string, raw []byte, lo, hi float64, rng string) error {
	if err := jsonNumber(field, raw); err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < lo || f > hi {
		return fieldErr(field, "out of range "+rng)
	}
	return nil
}

// jsonBool checks that raw is true or false.
func jsonBool(field string, raw []byte) error {
	if kindOf(raw) != kindBool {
		return fieldErr(field, "must be true or false")
	}
	return nil
}

// formInt parses a CSA integer: an optional '-' and decimal digits, nothing
// else (no '+', no spaces, no decimal point).
func formInt(field, s string, allowNegative bool) (int64, error) {
	digits := s
	if allowNegative && len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		if s == "" {
			return 0, fieldErr(field, "must not be empty")
		}
		return 0, fieldErr(field, "must be an integer")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			if allowNegative {
				return 0, fieldErr(field, "must be an integer")
			}
			return 0, fieldErr(field, "must be a non-negative integer")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fieldErr(field, "out of range")
	}
	return n, nil
}

// appendScaled appends v / 10^decimals as an exact, shortest decimal:
// (37566500, 6) → 37.5665, (126, 1) → 12.6, (120, 1) → 12, (-500, 6) → -0.0005.
// Going through float64 would print 37.566500000000005 for some inputs.
func appendScaled(dst []byte, v int64, decimals int) []byte {
	var u uint64
	if v < 0 {
		dst = append(dst, '-')
		u = uint64(-(v + 1)) + 1 // no overflow for math.MinInt64
	} else {
		u = uint64(v)
	}
	var digits [24]byte
	s := strconv.AppendUint(digits[:0], u, 10)
	for len(s) <= decimals {
		s = append([]byte{'0'}, s...)
	}
	point := len(s) - decimals
	frac := bytes.TrimRight(s[point:], "0")
	dst = append(dst, s[:point]...)
	if len(frac) > 0 {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst
}
