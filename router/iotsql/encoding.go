package iotsql

import (
	"encoding/base64"
	"strings"
)

// decode, the inverse of encode (funcs.go).

func encodingFuncs() []*funcDef {
	return []*funcDef{
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
func fnDecode(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return undef, nil
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
