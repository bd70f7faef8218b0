package gateway

import (
	"errors"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
)

// watchSecurity reloads the MQTT users file (mqtt.auth.users_file) and
// policy file (mqtt.acl_file) when their content changes. The broker keeps
// the last good version of each when a new one is broken.
func (g *Gateway) watchSecurity() error {
	for _, f := range []struct {
		path   string
		reload func() error
	}{
		{g.cfg.MQTT.Auth.UsersFile, g.broker.ReloadUsers},
		{g.cfg.MQTT.ACLFile, g.broker.ReloadPolicy},
	} {
		if f.path == "" {
			continue
		}
		reload := f.reload
		w, err := config.WatchFile(f.path, 0, func() { _ = reload() }, g.log.Named("mqtt")) // the broker logs the outcome
		if err != nil {
			return err
		}
		g.securityWatchers = append(g.securityWatchers, w)
		g.log.Info("watching for changes", zap.String("file", f.path))
	}
	return nil
}

// ReloadSecurity reloads the MQTT users and policy files now (SIGHUP). On
// a problem the previous version stays in force and the error says why.
func (g *Gateway) ReloadSecurity() error {
	if g.broker == nil {
		return nil
	}
	return errors.Join(g.broker.ReloadUsers(), g.broker.ReloadPolicy())
}

// stopWatchingSecurity stops the watchers of watchSecurity.
func (g *Gateway) stopWatchingSecurity() error {
	var errs []error
	for _, w := range g.securityWatchers {
		errs = append(errs, w.Close())
	}
	g.securityWatchers = nil
	return errors.Join(errs...)
}

// MQTTTLSAddr returns the bound address of the MQTT over TLS listener, or
// "" when mqtt.tls_listen is empty.
func (g *Gateway) MQTTTLSAddr() string { return g.broker.Addr("tls") }
