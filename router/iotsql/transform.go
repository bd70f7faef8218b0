package iotsql

import "strings"

// transform(mode, object, array), AWS's function of that name: for the mode
// 'enrichArray', the Array of the array's objects each with the object's
// members added. Any other mode, an object argument that is not an Object,
// or an array argument that is not an Array gives Undefined.

func transformFuncs() []*funcDef {
	return []*funcDef{
		{name: "transform", minArgs: 3, maxArgs: 3, call: fnTransform, check: checkTransform},
	}
}

// maxTransformBytes is the most JSON transform returns; AWS: "The array
// returned by this function is limited to 128 KiB". The limit also bounds
// how far one message can blow up (a large object times a long array).
const maxTransformBytes = 128 << 10

// checkTransform refuses a literal mode other than 'enrichArray', which
// could only ever give Undefined.
func checkTransform(c *callExpr) (int, string) {
	if s, isStr, lit := literalString(c, 0); lit && (!isStr || !strings.EqualFold(s, "enrichArray")) {
		return 0, "transform: the mode must be 'enrichArray'"
	}
	return 0, ""
}

// fnTransform enriches each element of the array with the object's members.
// [fleetgate] A member the element and the object both have takes the
// object's value (AWS does not say); an element that is not an Object is
// left out, as it has no attributes to enrich; a result over 128 KiB of
// JSON fails the rule (an *EvalError) rather than being cut.
func fnTransform(env *Env, c *callExpr) (any, error) {
	var vals [3]any
	for i := range vals {
		v, err := c.args[i].eval(env)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	mode, ok := vals[0].(string)
	if !ok || !strings.EqualFold(mode, "enrichArray") {
		return undef, nil
	}
	attrs, ok := vals[1].(map[string]any)
	if !ok {
		return undef, nil
	}
	arr, ok := vals[2].([]any)
	if !ok {
		return undef, nil
	}
	attrSize := len(appendJSON(nil, attrs))
	out := make([]any, 0, len(arr))
	size := 2 // []
	for _, e := range arr {
		elem, ok := e.(map[string]any)
		if !ok {
			continue
		}
		size += len(appendJSON(nil, elem)) + attrSize + 1
		if size > maxTransformBytes {
			return nil, &EvalError{Msg: "transform: the result is over 128 KiB"}
		}
		m := make(map[string]any, len(elem)+len(attrs))
		for k, v := range elem {
			m[k] = v
		}
		for k, v := range attrs {
			m[k] = v
		}
		out = append(out, m)
	}
	return out, nil
}
