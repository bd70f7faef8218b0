package iotsql

import (
	"math"
	"testing"
)

// TestAWSFunctionExamples is every example of AWS's "Functions" page of the
// IoT SQL reference (iot-sql-functions) for the functions fleetgate has,
// with the page's argument-type tables read for the Int/Decimal/Undefined
// distinctions. Where an example and its own prose or table disagree, the
// prose is followed and both readings are here.
func TestAWSFunctionExamples(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"abs(-5)", int64(5), "AWS: abs example; Int | Int"},
		{"abs('-5.123')", 5.123, "AWS: data types, abs(\"-5.123\") is treated as abs(-5.123); String | Decimal"},
		{"abs(b)", undef, "AWS: abs, Boolean | Undefined"}, {"abs(n)", undef, "AWS: abs, Null | Undefined"},
		{"acos(0)", 1.5707963267948966, "AWS: acos example"}, {"acos('0')", 1.5707963267948966, "AWS: acos, String | Decimal"},
		{"acos(2)", undef, "AWS: acos, imaginary results are returned as Undefined"},
		{"asin(0)", 0.0, "AWS: asin example"}, {"atan(0)", 0.0, "AWS: atan example"},
		{"atan2(1, 0)", 1.5707963267948966, "AWS: atan2 example"}, {"atan2('1', 0)", 1.5707963267948966, "AWS: atan2, Int/Decimal/String"},
		{"atan2(b, 0)", undef, "AWS: atan2, Other value | Undefined"},
		{"bitand(13, 5)", int64(5), "AWS: bitand example"}, {"bitand(13.9, '5.5')", int64(5), "AWS: bitand, rounded down to the nearest Int"},
		{"bitor(8, 5)", int64(13), "AWS: bitor example"},
		{"bitxor(13, 5)", int64(8), "AWS: bitxor example (printed as bitor(13, 5) = 8, which is bitxor's result)"},
		{"bitand(b, 1)", undef, "AWS: bitand, Other value | Undefined"},
		{"ceil(1.2)", int64(2), "AWS: ceil example"}, {"ceil(-1.2)", int64(-1), "AWS: ceil example"}, {"ceil('1.2')", int64(2), "AWS: ceil, String | Int"},
		{"chr(65)", "A", "AWS: chr example"}, {"chr(49)", "1", "AWS: chr example"},
		{"concat()", undef, "AWS: concat example"},
		{"concat([1, 2, 3], 4)", []any{int64(1), int64(2), int64(3), int64(4)}, "AWS: concat example"},
		{"concat([1, 2, 3], 'hello')", []any{int64(1), int64(2), int64(3), "hello"}, "AWS: concat example"},
		{"concat('con', 'cat')", "concat", "AWS: concat example"}, {"concat(1, 'hello')", "1hello", "AWS: concat example"},
		{"concat('he', 'is', 'man')", "heisman", "AWS: concat example"},
		{"concat([1, 2, 3], 'hello', [4, 5, 6])", []any{int64(1), int64(2), int64(3), "hello", int64(4), int64(5), int64(6)}, "AWS: concat example"},
		// AWS's example says concat(1) = "1"; its table says one argument
		// "is returned unmodified". The table is followed: the Int 1.
		{"concat(1)", int64(1), "AWS: concat table, 1 argument: returned unmodified"},
		{"concat(1, '')", "1", "the example's \"1\", written so that it is a String"},
		{"cos(0)", 1.0, "AWS: cos example"}, {"cosh(2.3)", 5.037220649268761, "AWS: cosh example"},
		{"endswith('cat', 'at')", true, "AWS: endswith example"}, {"endswith(n, 'at')", undef, "AWS: endswith, Null gives Undefined"},
		{"exp(1)", math.E, "AWS: exp example"}, {"exp(b)", undef, "AWS: exp, Other value | Undefined"},
		{"floor(1.2)", int64(1), "AWS: floor example"}, {"floor(-1.2)", int64(-2), "AWS: floor example"},
		{"get(['a', 'b', 'c'], 1)", "b", "AWS: get example"}, {"get({'a': 'b'}, 'a')", "b", "AWS: get example"},
		// AWS's example says get("abc", 1) = "a"; its table says "the
		// character at the 0-based index". The table is followed.
		{"get('abc', 1)", "b", "AWS: get table, String: the character at the 0-based index"},
		{"get('abc', 0)", "a", "the example's \"a\" is index 0"},
		{"get(['a', 'b'], '1')", "b", "AWS: get, Any Type (converted to Int)"}, {"get(['a'], 1)", undef, "AWS: get, outside the bounds: Undefined"},
		{"md5('hello')", "5d41402abc4b2a76b9719d911017c592", "AWS: hashing functions example"},
		{"indexof('abcd', 'bc')", int64(1), "AWS: indexof example"},
		{"isNull(5)", false, "AWS: isNull example"}, {"isNull(null)", true, "AWS: isNull example"}, {"isNull(missing)", false, "AWS: isNull, Undefined | false"},
		{"isUndefined(5)", false, "AWS: isUndefined example"}, {"isUndefined(floor([1, 2, 3]))", true, "AWS: isUndefined example"},
		{"length('hi')", int64(2), "AWS: length example"}, {"length(false)", int64(5), "AWS: length example"},
		{"ln(exp(1))", 1.0, "AWS: ln example, ln(e) = 1"}, {"log(100)", 2.0, "AWS: log example"},
		{"lower('HELLO')", "hello", "AWS: lower example"}, {"lower(['HELLO'])", `["hello"]`, "AWS: lower example"},
		{"lpad('hello', 2)", "  hello", "AWS: lpad example"}, {"lpad(1, 3)", "   1", "AWS: lpad example"},
		{"ltrim(' h i ')", "h i ", "AWS: ltrim example"},
		{"mod(8, 3)", int64(2), "AWS: mod example; Int | Int: Int"}, {"mod(8.5, 3)", 2.5, "AWS: mod, Int/Decimal: Decimal"},
		{"mod('8', '3')", 2.0, "AWS: mod, String/Int/Decimal: strings convert to Decimals"}, {"mod(a, 3)", undef, "AWS: mod, Other value"},
		{"nanvl(8, 3)", int64(8), "AWS: nanvl example"}, {"nanvl(missing, 3)", int64(3), "AWS: nanvl, Undefined | the second argument"},
		{"nanvl(n, 3)", int64(3), "AWS: nanvl, Null | the second argument"}, {"nanvl('x', 3)", "x", "AWS: nanvl, Other value | the first argument"},
		{"numbytes('hi')", int64(2), "AWS: numbytes example"}, {"numbytes('€')", int64(3), "AWS: numbytes example"},
		{"power(2, 5)", 32.0, "AWS: power example (32.0)"}, {"power('2', '5')", 32.0, "AWS: power, strings are converted to decimals"},
		{"regexp_matches('aaaa', 'a{2,}')", true, "AWS: regexp_matches example"}, {"regexp_matches('aaaa', 'b')", false, "AWS: regexp_matches example"},
		{"regexp_replace('abcd', 'bc', 'x')", "axd", "AWS: regexp_replace example"}, {"regexp_replace('abcd', 'b(.*)d', '$1')", "ac", "AWS: regexp_replace example"},
		{"regexp_substr('hihihello', 'hi')", "hi", "AWS: regexp_substr example"}, {"regexp_substr('hihihello', '(hi)*')", "hihi", "AWS: regexp_substr example"},
		{"remainder(8, 3)", int64(2), "AWS: remainder example"},
		{"replace('abcd', 'bc', 'x')", "axd", "AWS: replace example"}, {"replace('abcdabcd', 'b', 'x')", "axcdaxcd", "AWS: replace example"},
		{"rpad('hello', 2)", "hello  ", "AWS: rpad example"}, {"rpad(1, 3)", "1   ", "AWS: rpad example"},
		{"round(1.2)", int64(1), "AWS: round example"}, {"round(1.5)", int64(2), "AWS: round example"}, {"round(1.7)", int64(2), "AWS: round example"},
		{"round(-1.1)", int64(-1), "AWS: round example"}, {"round(-1.5)", int64(-2), "AWS: round example"},
		{"rtrim(' h i ')", " h i", "AWS: rtrim example"},
		{"sign(-7)", int64(-1), "AWS: sign example"}, {"sign(0)", int64(0), "AWS: sign example"}, {"sign(13)", int64(1), "AWS: sign example"},
		{"sin(0)", 0.0, "AWS: sin example"}, {"sinh(2.3)", 4.936961805545957, "AWS: sinh example"},
		{"substring('012345', 0)", "012345", "AWS: substring example"}, {"substring('012345', 2)", "2345", "AWS: substring example"},
		{"substring('012345', 2.745)", "2345", "AWS: substring example"}, {"substring(123, 2)", "3", "AWS: substring example"},
		{"substring('012345', -1)", "012345", "AWS: substring example"}, {"substring(true, 1.2)", "rue", "AWS: substring example"},
		{"substring(false, -2.411E247)", "false", "AWS: substring example"}, {"substring('012345', 1, 3)", "12", "AWS: substring example"},
		{"substring('012345', -50, 50)", "012345", "AWS: substring example"}, {"substring('012345', 3, 1)", "", "AWS: substring example"},
		{"sqrt(9)", 3.0, "AWS: sqrt example"}, {"startswith('ranger', 'ran')", true, "AWS: startswith example"},
		{"tan(3)", -0.1425465430742778, "AWS: tan example"}, {"tanh(2.3)", 0.9800963962661914, "AWS: tanh example"},
		{"trim(' hi ')", "hi", "AWS: trim example"},
		{"trunc(2.3, 0)", 2.0, "AWS: trunc example"}, {"trunc(2.3123, 2)", 2.31, "AWS: trunc example"},
		{"trunc(2.888, 2)", 2.88, "AWS: trunc example"}, {"trunc(2.00, 5)", 2.0, "AWS: trunc example"},
		{"trunc('2.3123', 2)", 2.31, "AWS: trunc, a String is converted to a Decimal value"}, {"trunc(b, 2)", undef, "AWS: trunc, Other value"},
		{"upper('hello')", "HELLO", "AWS: upper example"}, {"upper(['hello'])", `["HELLO"]`, "AWS: upper example"},
		{"cast(true AS Int)", int64(1), "AWS: cast example"}, {"cast('5E-12' AS Decimal)", 5e-12, "AWS: cast, String: \"5E-12\" converts"},
		{"cast(n AS String)", undef, "AWS: cast to string, Null | Undefined"},
		{`parse_time("yyyy.MM.dd G 'at' HH:mm:ss z", 100000000, "America/Belize")`, "1970.01.01 AD at 21:46:40 CST", "AWS: parse_time example"},
		{`time_to_epoch("2020-04-03 09:45:18 UTC+01:00", "yyyy-MM-dd HH:mm:ss VV")`, int64(1585903518000), "AWS: time_to_epoch example"},
		{`time_to_epoch("18 December 2015", "dd MMMM yyyy")`, int64(1450396800000), "AWS: time_to_epoch example"},
		{`time_to_epoch("2007-12-03 10:15:30.592 America/Los_Angeles", "yyyy-MM-dd HH:mm:ss.SSS z")`, int64(1196705730592), "AWS: time_to_epoch example"},
		{"topic()", "fleet/D1/report", "AWS: topic example (the whole topic)"}, {"topic(1)", "fleet", "AWS: topic(1), the first segment"},
		{"clientid()", "D1", "AWS: clientid"},
	})
}

// TestAWSDecodeExample is decode's example: the payload's base64 member is
// a JSON document whose members the statement reads.
func TestAWSDecodeExample(t *testing.T) {
	runQueryCases(t, []queryCase{
		{`SELECT decode(encoded_temp, "base64").temperature AS temp FROM 'topic/subtopic'`,
			`{"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}`, `{"temp":33}`, "AWS: decode example"},
	})
}
