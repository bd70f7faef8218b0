package iotsql

import "testing"

func TestHashFunctions(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"md5('hello')", "5d41402abc4b2a76b9719d911017c592", "AWS: md5 example"},
		{"sha1('hello')", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "AWS: sha1 example"},
		{"sha224('hello')", "ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193", "AWS: sha224 example"},
		{"sha256('hello')", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "AWS: sha256 example"},
		{"sha384('hello')", "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f", "AWS: sha384 example"},
		{"sha512('hello')", "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043", "AWS: sha512 example"},
		{"md5(s)", "5d41402abc4b2a76b9719d911017c592", ""},
		{"md5(1)", "c4ca4238a0b923820dcc509a6f75849b", "converted to the String '1'"},
		{"sha1('')", "da39a3ee5e6b4b0d3255bfef95601890afd80709", ""},
		{"md5(n)", undef, "Null: the To string conversion gives Undefined"}, {"sha256(missing)", undef, ""},
		// AWS: "Standard string conversions apply to non-string arguments";
		// an Array or Object converts to its JSON ("[1,2]", `{"k":"v"}`).
		{"md5(a)", "f79408e5ca998cd53faf44af31e6eb45", "AWS: hashing functions, an Array is hashed as its JSON"},
		{"sha1(o)", "a6d884843f57ee12a695952daaa2cc24099ab372", "AWS: hashing functions, an Object is hashed as its JSON"},
		{"md5(true)", "b326b5062b2f0e69046810717534cb09", "AWS: hashing functions, a Boolean as 'true'"},
	})
}
