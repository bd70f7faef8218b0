package iotsql

import "testing"

func TestStringFunctions(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"chr(65)", "A", "AWS: chr example"}, {"chr(49)", "1", "AWS: chr example"},
		{"chr(65.7)", "A", ""}, {"chr('66')", "B", ""}, {"chr(0)", "\x00", ""}, {"chr(127)", "\x7f", ""},
		{"chr(128)", undef, "AWS: no valid ASCII value, Undefined"}, {"chr(8364)", undef, ""},
		{"chr(-1)", undef, ""}, {"chr(s)", undef, ""}, {"chr(b)", undef, ""},
		{"lpad('hello', 2)", "  hello", "AWS: lpad example"}, {"lpad(1, 3)", "   1", "AWS: lpad example"},
		{"rpad('hello', 2)", "hello  ", "AWS: rpad example"}, {"rpad(1, 3)", "1   ", "AWS: rpad example"},
		{"lpad(s, -4)", "hello", "clamped to 0"}, {"length(rpad('', 5000))", int64(1000), "clamped to 1000"},
		{"lpad(s, 1.9)", " hello", "rounded down"}, {"lpad(s, '2')", "  hello", ""}, {"lpad(b, 1)", " true", ""},
		{"lpad(n, 2)", undef, ""}, {"lpad(s, s)", undef, ""}, {"rpad(missing, 1)", undef, ""},
		{"lpad(a, 1)", " [1,2]", "AWS: lpad, Other value | Int: the first value is converted to a String using the standard conversions"},
		{"rpad(o, 1)", `{"k":"v"} `, "AWS: rpad, Other value | Int: converted by the standard conversions"},
		{"lpad(s, b)", undef, "AWS: lpad, Any value | Other value: Undefined"}, {"rpad(s, a)", undef, "AWS: rpad, Any value | Other value: Undefined"},
		{"numbytes('hi')", int64(2), "AWS: numbytes example"}, {"numbytes('€')", int64(3), "AWS: numbytes example"},
		{"numbytes('')", int64(0), ""}, {"numbytes(missing)", undef, ""}, {"numbytes(n)", undef, ""},
		{"numbytes(i)", int64(2), "AWS: numbytes, Standard conversion rules apply to non-String arguments (13 is '13')"},
		{"numbytes(b)", int64(4), "AWS: numbytes, a Boolean converts to 'true'"}, {"numbytes(a)", int64(5), "an Array converts to its JSON '[1,2]'"},
	})
}
