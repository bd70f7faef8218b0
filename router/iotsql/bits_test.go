package iotsql

import "testing"

func TestBitFunctions(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"bitand(13, 5)", int64(5), "AWS: bitand example"},
		{"bitor(8, 5)", int64(13), "AWS: bitor example"},
		{"bitxor(8, 5)", int64(13), "AWS: bitxor example"},
		// AWS's prose: "performs a bitwise NOT on the bits of the Int
		// argument"; its example says bitnot(13) = 2, which is the NOT of
		// the four low bits only. fleetgate follows the prose (64-bit two's
		// complement); the example's figure is bitand(bitnot(13), 15).
		{"bitnot(13)", int64(-14), "AWS: bitnot prose (the example shows 2)"},
		{"bitand(bitnot(13), 15)", int64(2), "AWS: bitnot example's 2, as the NOT of four bits"},
		{"bitnot(bitnot(i))", int64(13), ""},
		{"bitand(13.9, 5)", int64(5), "a Decimal is rounded down"}, {"bitor('8', 5.2)", int64(13), "a numeric String converts"},
		{"bitand(-1.5, 255)", int64(254), "rounded down: -2"},
		{"bitand(s, 1)", undef, ""}, {"bitor(b, 1)", undef, ""}, {"bitxor(1, n)", undef, ""}, {"bitnot(missing)", undef, ""},
	})
}
