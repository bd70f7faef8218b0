// Package mqttwire reads and writes single MQTT packets with mochi's own
// codec, for tests that must control every packet (pipelined publishes, the
// DUP flag, reused packet ids, MQTT 5 reason codes) where paho, which speaks
// only 3.1.1 and hides its session, cannot.
package mqttwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrDecode marks a packet that arrived but could not be decoded (as
// opposed to a read that failed or timed out).
var ErrDecode = errors.New("mqttwire: cannot decode packet")

// Encode returns the wire bytes of pk (CONNECT, PUBLISH, PUBREL,
// SUBSCRIBE, DISCONNECT).
func Encode(pk packets.Packet) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		err = fmt.Errorf("mqttwire cannot encode packet type %d", pk.FixedHeader.Type)
	}
	return buf.Bytes(), err
}

// ReadFrame reads one packet's fixed header and body, undecoded.
func ReadFrame(r *bufio.Reader) (packets.FixedHeader, []byte, error) {
	var fh packets.FixedHeader
	hb, err := r.ReadByte()
	if err != nil {
		return fh, nil, err
	}
	if err := fh.Decode(hb); err != nil {
		return fh, nil, fmt.Errorf("%w: fixed header: %v", ErrDecode, err)
	}
	// MQTT's variable byte integer is little-endian base 128, as uvarint.
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return fh, nil, err
	}
	fh.Remaining = int(n)
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return fh, body, err
}

// ReadPacket reads and decodes one packet of the acknowledgement kinds a
// broker sends a publishing client (CONNACK, PUBACK, PUBREC, PUBCOMP,
// PUBLISH, SUBACK, DISCONNECT); any other type comes back with only its fixed header.
func ReadPacket(r *bufio.Reader, version byte) (packets.Packet, error) {
	fh, body, err := ReadFrame(r)
	if err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: version}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	if err != nil {
		return pk, fmt.Errorf("%w: type %d: %v", ErrDecode, fh.Type, err)
	}
	return pk, nil
}
