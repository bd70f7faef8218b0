package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// magicByte starts every record of the Confluent wire format.
const magicByte = 0

// FrameLen is the length of the Confluent frame header.
const FrameLen = 5

// Frame appends the Confluent wire format of a JSON record to dst: the
// magic byte 0, the schema id as a 4-byte big-endian integer, then the
// JSON. Kafka Connect's JsonSchemaConverter and Confluent's JSON Schema
// deserializers read it.
func Frame(dst []byte, id int, record []byte) []byte {
	dst = append(dst, magicByte)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	return append(dst, record...)
}

// Unframe splits a record in the Confluent wire format into its schema id
// and its payload.
func Unframe(b []byte) (id int, payload []byte, err error) {
	if len(b) < FrameLen {
		return 0, nil, fmt.Errorf("a Confluent frame has at least %d bytes, got %d", FrameLen, len(b))
	}
	if b[0] != magicByte {
		return 0, nil, errors.New("not the Confluent wire format: the first byte is not 0")
	}
	return int(binary.BigEndian.Uint32(b[1:FrameLen])), b[FrameLen:], nil
}
