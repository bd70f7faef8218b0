package iotsql

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// MatchTopic reports whether the MQTT topic matches the topic filter: "+" matches
// exactly one level (which may be empty), a final "#" matches the parent level and
// any number of levels below it. As MQTT requires, filters starting with a wildcard
// do not match topics starting with "$". filter is assumed valid (see ValidFilter).
func MatchTopic(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		if filter == "#" {
			return true
		}
		var f, t string
		fi := strings.IndexByte(filter, '/')
		if fi < 0 {
			f = filter
		} else {
			f = filter[:fi]
		}
		ti := strings.IndexByte(topic, '/')
		if ti < 0 {
			t = topic
		} else {
			t = topic[:ti]
		}
		if f != "+" && f != t {
			return false
		}
		switch {
		case fi < 0 && ti < 0:
			return true
		case fi < 0:
			return false // topic has more levels
		case ti < 0:
			// Topic ended; only a trailing "/#" still matches ("a/#" matches "a").
			return filter[fi+1:] == "#"
		}
		filter, topic = filter[fi+1:], topic[ti+1:]
	}
}

// ValidFilter checks an MQTT topic filter: not empty, at most 65535 bytes of UTF-8
// without NUL, "#" only as the whole last level, "+" only as a whole level.
func ValidFilter(filter string) error {
	switch {
	case filter == "":
		return errors.New("empty topic filter")
	case len(filter) > 65535:
		return errors.New("topic filter longer than 65535 bytes")
	case !utf8.ValidString(filter):
		return errors.New("topic filter is not valid UTF-8")
	case strings.IndexByte(filter, 0) >= 0:
		return errors.New("topic filter contains NUL")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New(`"#" must be the whole last level`)
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New(`"+" must be a whole level`)
		}
	}
	return nil
}
