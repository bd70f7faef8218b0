package broker

import (
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/policy"
)

// ReloadUsers re-reads mqtt.auth.users_file and swaps it in. Connections
// and sessions of users whose line went or changed (a revoked terminal, a
// new password) end: the connection is closed and an offline session gets
// no more deliveries. The others stay. On any error the previous users stay in force
// and the error says why. Without a users file it does nothing. It is safe
// for concurrent use.
func (b *Broker) ReloadUsers() error {
	path := b.cfg.Auth.UsersFile
	if path == "" {
		return nil
	}
	users, err := loadUsers(path)
	if err != nil {
		b.log.Error("users file reload rejected; the previous users stay in force", zap.String("file", path), zap.Error(err))
		return err
	}
	old := b.auth.users.Swap(users)
	b.log.Info("users file reloaded", zap.String("file", path), zap.Int("users", len(users.creds)))
	b.auth.revoke(old, users, b.server)
	warnPlaintext(users, path, b.log)
	return nil
}

// ReloadPolicy re-reads mqtt.acl_file and swaps the compiled policy in
// atomically: every decision from then on, including deliveries to
// subscriptions made before, uses it, and a connected client's will that
// it denies is taken back (not published when the connection drops). On any error the previous policy
// stays in force. Without a policy file it does nothing. It is safe for
// concurrent use.
func (b *Broker) ReloadPolicy() error {
	path := b.cfg.ACLFile
	if path == "" {
		return nil
	}
	p, err := loadPolicy(path)
	if err != nil {
		b.log.Error("policy reload rejected; the previous policy stays in force", zap.String("file", path), zap.Error(err))
		return err
	}
	b.auth.policy.Store(&policySource{p: p, from: path})
	b.log.Info("policy reloaded", zap.String("file", path), zap.Int("rules", p.Len()))
	b.auth.withdrawWills()
	return nil
}

// warnInsecure logs, once at start, what leaves the broker open.
func warnInsecure(cfg Config, users *userTable, pol *policy.Policy, log *zap.Logger) {
	if cfg.Auth.AllowAnonymous {
		msg := "anonymous MQTT access is on (mqtt.auth.allow_anonymous): any client may connect"
		if pol.AllowsAll() {
			msg += ", publish and subscribe to anything (no mqtt.acl_file); fine for development, not for a fleet"
		}
		log.Warn(msg)
	}
	if !cfg.Auth.AllowAnonymous && cfg.ACLFile == "" {
		log.Info("mqtt.acl_file not set: the built-in default policy is in force (docs/security.md)")
		if !cfg.Auth.EnforceDeviceIdentity {
			log.Warn("the default policy grants topics by client id (${clientid}) but mqtt.auth.enforce_device_identity is false: a device can claim another's client id")
		}
	}
	warnPlaintext(users, cfg.Auth.UsersFile, log)
}

func warnPlaintext(users *userTable, path string, log *zap.Logger) {
	if users.plaintext > 0 {
		log.Warn("the users file holds plaintext passwords (\"username password\" lines); replace them with htpasswd -B or mosquitto_passwd hashes",
			zap.String("file", path), zap.Int("plaintext_users", users.plaintext))
	}
}
