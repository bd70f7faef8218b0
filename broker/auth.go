package broker

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// authHook decides who may connect (mqtt.auth) and what they may publish
// and subscribe. It is a mochi hook of its own, apart from the ingest
// hook, so that identity and delivery stay separate concerns.
type authHook struct {
	mqtt.HookBase
	cfg   Config
	users map[string]string
	obs   Observer
	log   *zap.Logger
}

func newAuthHook(cfg Config, users map[string]string, obs Observer, log *zap.Logger) *authHook {
	return &authHook{cfg: cfg, users: users, obs: obs, log: log}
}

// ID implements mqtt.Hook.
func (h *authHook) ID() string { return "fleetgate-auth" }

// Provides implements mqtt.Hook.
func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// OnConnectAuthenticate implements mqtt.Hook (mqtt.auth).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	auth := h.cfg.Auth
	user := string(pk.Connect.Username)
	ok := auth.AllowAnonymous
	if pw, known := h.users[user]; known && user != "" {
		ok = constantTimeEqual(pw, string(pk.Connect.Password))
	} else if !auth.AllowAnonymous && h.cfg.TLS.ClientCAFile != "" {
		ok = peerCommonName(cl) != "" // the TLS layer verified the chain
	}
	if ok && auth.EnforceDeviceIdentity {
		id := user
		if id == "" {
			id = peerCommonName(cl)
		}
		ok = id != "" && id == cl.ID
	}
	if !ok {
		h.obs.ClientRefused()
		// Sampled like every log line: a fleet with a wrong password
		// retrying cannot flood the log.
		h.log.Info("mqtt connection refused: authentication failed", zap.String("client_id", cl.ID), zap.String("username", user),
			zap.String("remote", cl.Net.Remote))
	}
	return ok
}

// OnACLCheck implements mqtt.Hook: anyone authenticated may publish and
// subscribe.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool { return true }
