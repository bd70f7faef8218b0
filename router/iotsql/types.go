package iotsql

// Functions that test and take apart values.

func typeFuncs() []*funcDef {
	return []*funcDef{
		{name: "isUndefined", minArgs: 1, maxArgs: 1, call: fnIsUndefined},
		{name: "isNull", minArgs: 1, maxArgs: 1, call: fnIsNull},
		{name: "get", minArgs: 2, maxArgs: 2, call: fnGet},
	}
}

func fnIsUndefined(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	return isUndef(v), nil
}

func fnIsNull(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	return v == nil, nil
}

// get(array, index), get(string, index) (a one-character String) and
// get(object, key); anything else, or an index out of range, is Undefined.
func fnGet(env *Env, c *callExpr) (any, error) {
	coll, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	k, err := c.args[1].eval(env)
	if err != nil {
		return nil, err
	}
	switch coll := coll.(type) {
	case map[string]any:
		if s, ok := k.(string); ok {
			return memberValue(coll, s), nil
		}
	case []any:
		if i, ok := toInt(k); ok && i >= 0 && i < int64(len(coll)) {
			return coll[i], nil
		}
	case string:
		if i, ok := toInt(k); ok && i >= 0 {
			for _, r := range coll {
				if i == 0 {
					return string(r), nil
				}
				i--
			}
		}
	}
	return undef, nil
}
