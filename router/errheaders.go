package router

import (
	"strconv"
	"unicode/utf8"
)

// MaxErrorHeaderBytes bounds each header value of an error record that
// echoes what the sender chose (the error message, client_id, mqtt_topic,
// principal, claimed_id, the error action's own headers), so that a hostile
// client id or payload value cannot make the error record itself too large
// to store.
const MaxErrorHeaderBytes = 256

// clip returns s as a header value of at most MaxErrorHeaderBytes bytes: a
// longer s keeps its start, cut at a UTF-8 boundary, followed by
// "...(N bytes)" with its original length.
func clip(s string) []byte {
	if len(s) <= MaxErrorHeaderBytes {
		return []byte(s)
	}
	suffix := "...(" + strconv.Itoa(len(s)) + " bytes)"
	cut := MaxErrorHeaderBytes - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return append([]byte(s[:cut]), suffix...)
}
