// Package ident holds the one rule for identifier-like texts a terminal
// sends: its device number above all, and the kinds, firmware versions and
// reasons of the legacy bodies. Such a text becomes a Kafka key, an MQTT
// client id or a topic part downstream, so it must be non-empty, short,
// valid UTF-8, without control characters and without leading or trailing
// spaces. The legacy decoders and the router's identity check both apply
// it, so a device id one accepts the other does too.
package ident

import (
	"strconv"
	"unicode/utf8"
)

// MaxLen is the longest identifier the legacy decoders accept, in bytes,
// and the default of router.identity.max_length.
const MaxLen = 128

// Problem says what is wrong with s as an identifier of at most maxLen
// bytes, as a phrase to follow its name ("is empty"), or "" when nothing is.
func Problem[T ~string | ~[]byte](s T, maxLen int) string {
	switch {
	case len(s) == 0:
		return "is empty"
	case len(s) > maxLen:
		return "is longer than " + strconv.Itoa(maxLen) + " bytes"
	case !utf8.Valid([]byte(s)):
		return "is not valid UTF-8"
	case s[0] == ' ' || s[len(s)-1] == ' ':
		return "has leading or trailing spaces"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}
