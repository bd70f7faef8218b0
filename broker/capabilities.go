package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
)

// Capabilities returns the mochi capabilities the broker runs with for c:
// mochi's defaults with the limits of this configuration. It is exported
// so that a plain mochi server can be configured the same way and compared
// with the gateway (test/interop).
func (c Config) Capabilities() *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(c.MaxPacketBytes)
	// Advertise our per-connection window so that MQTT 5 clients never
	// exceed it; 3.1.1 clients that do are simply read more slowly.
	caps.ReceiveMaximum = uint16(c.MaxInflight)
	// mochi gives every client a queue of this many pending downlink
	// writes (8192 by default: 64 KiB of pointers), made when the first
	// packet is queued (our patch; upstream makes it at connect).
	// Terminals publish; downlink is only republish and fan-out. A
	// subscriber that falls this far behind has messages dropped (counted
	// in $SYS).
	caps.MaximumClientWritesPending = int32(c.MaxPendingWrites)
	c.boundCapabilities(caps)
	return caps
}

// ServerOptions returns the mochi server options the broker runs with,
// Capabilities and Logger left for the caller to set. (None of them
// depends on the configuration today.)
func (c Config) ServerOptions() *mqtt.Options {
	return &mqtt.Options{
		InlineClient:             true, // for republish and fan-out after our own acks
		SysTopicResendInterval:   60,   // $SYS every minute, not every second
		ClientNetWriteBufferSize: 2048,
		ClientNetReadBufferSize:  2048,
	}
}
