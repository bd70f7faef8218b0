package iotsql

import (
	"encoding/base64"
	"strings"
)

// encode and decode (base64).

func encodingFuncs() []*funcDef {
	return []*funcDef{
		{name: "encode", minArgs: 2, maxArgs: 2, call: fnEncode, check: checkEncode},
		{name: "decode", minArgs: 2, maxArgs: 2, call: fnDecode, check: checkDecode},
	}
}

func checkDecode(c *callExpr) (int, string) {
	if s, isStr, _ := literalString(c, 1); !isStr || !strings.EqualFold(s, "base64") {
		return 1, "decode: the encoding must be the literal 'base64' (protobuf decoding is not supported)"
	}
	return 0, ""
}

// decode(s, 'base64') decodes the base64 String s (standard alphabet,
// padding optional, as Java's decoder). When the bytes are a JSON object or
// array, the result is that value, whose members the statement can address;
// otherwise it is the bytes as a String. A String that is not base64 gives
// Null, as AWS documents; any other argument gives Undefined.
// decode(*, 'base64') decodes the raw payload (blanks around it ignored), so
// a device can send base64 text as its whole payload.
func fnDecode(env *Env, c *callExpr) (any, error) {
	var s string
	if _, ok := c.args[0].(starExpr); ok {
		// The raw payload is the base64 text, whatever else it is.
		s = strings.TrimSpace(string(env.msg.Payload))
	} else {
		var ok bool
		var err error
		if s, ok, err = stringArg(env, c, 0); err != nil || !ok {
			return undef, err
		}
	}
	b, err := base64.RawStdEncoding.DecodeString(trimPadding(s))
	if err != nil {
		return nil, nil
	}
	if i := skipWS(b, 0); i < len(b) && (b[i] == '{' || b[i] == '[') {
		if doc, err := decodeJSON(b); err == nil {
			return doc, nil
		}
	}
	return string(b), nil
}

// trimPadding removes up to two trailing '=' (more is not base64).
func trimPadding(s string) string {
	for n := 0; n < 2 && strings.HasSuffix(s, "="); n++ {
		s = s[:len(s)-1]
	}
	return s
}

func checkEncode(c *callExpr) (int, string) {
	if s, isStr, _ := literalString(c, 1); !isStr || !strings.EqualFold(s, "base64") {
		return 1, "encode: the encoding must be the literal 'base64'"
	}
	return 0, ""
}

// encode(*, 'base64') is the raw payload in base64, whatever its format; encode(x,
// 'base64') encodes x converted to a String.
func fnEncode(env *Env, c *callExpr) (any, error) {
	if _, ok := c.args[0].(starExpr); ok {
		return base64.StdEncoding.EncodeToString(env.msg.Payload), nil
	}
	s, ok, err := strArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}
