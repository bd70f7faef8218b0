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
		{"md5(n)", undef, ""}, {"md5(a)", undef, "an Array"}, {"sha1(o)", undef, "an Object"}, {"sha256(missing)", undef, ""},
	})
}
