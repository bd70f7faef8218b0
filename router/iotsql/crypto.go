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
// the argument's UTF-8 bytes, the argument converted to a String as the
// other string functions do (so md5(1) is md5('1')); Null and Undefined give
// Undefined. The hashes are the standard library's.

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
		v, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		s, ok := toStr(v)
		if !ok {
			return undef, nil
		}
		h := newHash()
		h.Write([]byte(s))
		var sum [sha512.Size]byte
		return hex.EncodeToString(h.Sum(sum[:0])), nil
	}
}
