package iotsql

// DecodeJSON validates and decodes one JSON document into the value model
// (see value.go): objects are map[string]any, integers int64, other numbers
// float64 (json.Number when neither fits). Lookup tables that keep their
// rows as JSON decode them with it on a hit.
func DecodeJSON(b []byte) (any, error) { return decodeJSON(b) }
