package iotsql

import (
	"math"
	"testing"
)

func TestMathFunctions(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"mod(8, 3)", int64(2), "AWS: mod example"},
		{"mod(-8, 3)", int64(-2), "sign of the dividend, as Java's %"},
		{"mod(8.5, 3)", 2.5, ""}, {"mod('8', 3)", 2.0, "a numeric String converts to a Decimal"},
		{"mod(8, 0)", undef, ""}, {"mod(s, 3)", undef, ""}, {"mod(b, 3)", undef, ""}, {"mod(missing, 3)", undef, ""},
		{"power(2, 5)", 32.0, "AWS: power example (32.0, a Decimal)"},
		{"power(2.0, 5)", 32.0, ""}, {"power('2', 3)", 8.0, ""}, {"power(-8, 0.5)", undef, "not a number"},
		{"power(s, 2)", undef, ""}, {"power(n, 2)", undef, ""},
		{"sqrt(9)", 3.0, "AWS: sqrt example (3.0)"}, {"sqrt(-1)", undef, ""}, {"sqrt('16')", 4.0, ""}, {"sqrt(a)", undef, ""},
		{"sign(-7)", int64(-1), "AWS: sign example"}, {"sign(0)", int64(0), ""}, {"sign(2.5)", int64(1), "an Int for a Decimal too"},
		{"sign(-0.1)", int64(-1), ""}, {"sign('-3')", int64(-1), ""}, {"sign(b)", undef, ""},
		{"trunc(2.3, 0)", 2.0, "AWS: trunc example"}, {"trunc(2.3123, 2)", 2.31, "AWS: trunc example"},
		{"trunc(2.888, 2)", 2.88, "AWS: trunc example"}, {"trunc(2.00, 5)", 2.0, "AWS: trunc example"},
		{"trunc(0.29, 2)", 0.29, "cut in decimal, not in binary"}, {"trunc(-2.78, 1)", -2.7, "toward zero"},
		{"trunc(2.345, -1)", 2.0, "places below 0 count as 0"}, {"trunc(2.345, 1.9)", 2.3, "places rounded down"},
		{"trunc(7, 2)", int64(7), "an Int is the source value"}, {"trunc(s, 1)", undef, ""}, {"trunc(2.5, s)", undef, ""},
		{"ln(exp(1))", 1.0, "AWS: ln example, ln(e) = 1"}, {"ln(0)", undef, ""}, {"ln(-1)", undef, ""},
		{"log(100)", 2.0, "AWS: log example (base 10)"}, {"log(0.001)", -3.0, ""}, {"log(s)", undef, ""},
		{"exp(1)", math.E, "AWS: exp example, exp(1) = e"}, {"exp(0)", 1.0, ""}, {"exp(1000)", undef, "overflow"},
		{"sin(0)", 0.0, "AWS: sin example"}, {"cos(0)", 1.0, "AWS: cos example"},
		{"tan(3)", -0.1425465430742778, "AWS: tan example"},
		{"asin(0)", 0.0, "AWS: asin example"}, {"asin(2)", undef, "out of the domain"},
		{"acos(0)", 1.5707963267948966, "AWS: acos example"},
		{"atan(0)", 0.0, "AWS: atan example"},
		{"atan2(1, 0)", 1.5707963267948966, "AWS: atan2 example"}, {"atan2(0, -1)", math.Pi, ""},
		{"sinh(2.3)", 4.936961805545957, "AWS: sinh example"}, {"cosh(2.3)", 5.037220649268761, "AWS: cosh example"},
		{"tanh(2.3)", 0.9800963962661914, "AWS: tanh example"}, {"sinh(s)", undef, ""},
		{"remainder(8, 3)", int64(2), "AWS: remainder example"}, {"remainder(8, 0)", undef, ""},
		{"sin(b)", undef, ""}, {"cos(o)", undef, ""}, {"atan2(1, missing)", undef, ""}, {"atan2('1', '1')", math.Pi / 4, ""},
	})
}

func TestRand(t *testing.T) {
	q, err := ParseQuery("SELECT rand() AS a, rand() AS b FROM 't'")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := q.Eval(NewEnv(testMessage(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	m := decodeObject(t, out)
	a, _ := m["a"].(float64)
	b, _ := m["b"].(float64)
	if a < 0 || a >= 1 || b < 0 || b >= 1 || a == b {
		t.Errorf("rand() gave %v and %v, want two Decimals in [0, 1)", m["a"], m["b"])
	}
}
