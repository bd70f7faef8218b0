package iotsql

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
)

// Hash functions of the AWS IoT SQL reference: the lower-case hex digest of
// the argument's UTF-8 bytes. Any other argument is converted to a String
// first by the standard conversions, as AWS says ("Standard string
// conversions apply to non-string arguments"): md5(1) is md5('1'), an Array
// or Object hashes its JSON; Null or Undefined gives Undefined. The hashes
// are the standard library's.

func cryptoFuncs() []*funcDef {
	return []*funcDef{
		{name: "md5", minArgs: 1, maxArgs: 1, call: hashFunc(md5.New)},
		{name: "sha1", minArgs: 1, maxArgs: 1, call: hashFunc(sha1.New)},
		{name: "sha224", minArgs: 1, maxArgs: 1, call: hashFunc(sha256.New224)},
		{name: "sha256", minArgs: 1, maxArgs: 1, call: hashFunc(sha256.New)},
		{name: "sha384", minArgs: 1, maxArgs: 1, call: hashFunc(sha512.New384)},
		{name: "sha512", minArgs: 1, maxArgs: 1, call: hashFunc(sha512.New)},
	}
}

func hashFunc(newHash func() hash.Hash) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		s, ok, err := strArg(env, c, 0)
		if err != nil || !ok {
			return undef, err
		}
		h := newHash()
		h.Write([]byte(s))
		var sum [sha512.Size]byte
		return hex.EncodeToString(h.Sum(sum[:0])), nil
	}
}
