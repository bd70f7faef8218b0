package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
	"github.com/fleetgate/fleetgate/policy"
)

const (
	chartDir       = "helm/fleetgate"
	productionVals = "helm/fleetgate/ci/production-values.yaml"
	// EnvHelm names the helm binary; test/run sets it to the one it
	// builds with go install (see helmInstall).
	envHelm     = "FLEETGATE_HELM"
	helmInstall = "go install helm.sh/helm/v3/cmd/helm@v3.22.0 (test/run does, into ~/.cache/fleetgate/bin)"
)

// helmBin finds helm: $FLEETGATE_HELM, the test/run cache, or PATH.
func helmBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envHelm); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, ".cache", "fleetgate", "bin", "helm-v3.22.0"); fileExists(p) {
			return p
		}
	}
	return tool(t, "helm", helmInstall)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), stderr.String())
	}
	return out.String(), nil
}

// manifest is one rendered Kubernetes object, decoded loosely: the tests
// walk it with get.
type manifest map[string]any

func (m manifest) kind() string { return get[string](m, "kind") }
func (m manifest) name() string { return get[string](m, "metadata", "name") }

// get walks keys (string for maps, int for lists) and returns the value
// as T, or T's zero value when a step is missing.
func get[T any](v any, path ...any) T {
	var zero T
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if mm, ok2 := v.(manifest); ok2 {
					m, ok = mm, true
				}
			}
			if !ok {
				return zero
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return zero
			}
			v = l[k]
		}
	}
	t, _ := v.(T)
	return t
}

type release struct {
	objects []manifest
}

// render runs helm template on the chart with the values files and --set
// arguments and decodes every object.
func render(t *testing.T, args ...string) release {
	t.Helper()
	return renderAs(t, "fleetgate", "fleet", args...)
}

// renderAs is render with a release name and namespace.
func renderAs(t *testing.T, name, namespace string, args ...string) release {
	t.Helper()
	out, err := helm(t, append([]string{"template", name, chartDir, "--namespace", namespace}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var r release
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		// Into a plain map: yaml.v3 would decode nested maps as manifest too.
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("rendered manifests are not YAML: %v\n%s", err, out)
		}
		if m != nil {
			r.objects = append(r.objects, manifest(m))
		}
	}
	return r
}

func (r release) find(t *testing.T, kind, name string) manifest {
	t.Helper()
	for _, m := range r.objects {
		if m.kind() == kind && (name == "" || m.name() == name) {
			return m
		}
	}
	t.Fatalf("no %s %q rendered", kind, name)
	return nil
}

func (r release) count(kind string) int {
	n := 0
	for _, m := range r.objects {
		if m.kind() == kind {
			n++
		}
	}
	return n
}

func TestHelmLint(t *testing.T) {
	for _, args := range [][]string{{}, {"-f", productionVals}} {
		if out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...); err != nil {
			t.Error(err)
		} else if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %v:\n%s", args, out)
		}
	}
}

// chartCase is what a rendering must show.
type chartCase struct {
	name      string
	args      []string
	ports     []string          // the terminals' Service ports by name
	mounts    map[string]string // secret volume mount path -> Secret name
	grace     int
	prom      bool // ServiceMonitor and PrometheusRule
	envSecret string

	// Zero values mean the defaults: release "fleetgate" in namespace
	// "fleet", objects named "fleetgate", a LoadBalancer, 3 replicas.
	release, namespace, fullname string
	svcType                      string
	replicas                     int
	env                          map[string]string // plain env the pod must have
	anonymous                    *bool             // mqtt.auth.allow_anonymous the pod loads
	crl                          string            // the base name of mqtt.tls.crl_file the pod loads ("": none)
	nodePorts                    map[string]int
	resources                    map[string]any // container resources, exactly
	podSecurity                  map[string]any // pod securityContext keys that must hold
	promLabels                   map[string]any // extra labels of the ServiceMonitor and PrometheusRule
	rules                        []string       // rule names the pod loads; nil: not checked
}

func (tc chartCase) defaults() chartCase {
	if tc.release == "" {
		tc.release = "fleetgate"
	}
	if tc.namespace == "" {
		tc.namespace = "fleet"
	}
	if tc.fullname == "" {
		tc.fullname = "fleetgate"
	}
	if tc.svcType == "" {
		tc.svcType = "LoadBalancer"
	}
	if tc.replicas == 0 {
		tc.replicas = 3
	}
	return tc
}

func TestHelmTemplate(t *testing.T) {
	cases := []chartCase{
		{name: "default values", ports: []string{"mqtt", "https"}, mounts: map[string]string{}, grace: 45},
		{name: "production values", args: []string{"-f", productionVals}, ports: []string{"mqtt", "mqtts", "https"},
			mounts: map[string]string{
				"/etc/fleetgate/secrets/mqtt-tls":          "fleetgate-mqtt-tls",
				"/etc/fleetgate/secrets/telematics-tls":    "fleetgate-telematics-tls",
				"/etc/fleetgate/secrets/kafka-tls":         "msk-ca",
				"/etc/fleetgate/secrets/mqtt-users":        "fleetgate-mqtt-users",
				"/etc/fleetgate/secrets/mqtt-policy":       "fleetgate-mqtt-policy",
				"/etc/fleetgate/secrets/telematics-tokens": "fleetgate-telematics-tokens",
			},
			grace: 75, prom: true, envSecret: "fleetgate-msk-scram", replicas: 4, anonymous: ptr(false), crl: "ca.crl",
			promLabels: map[string]any{"release": "kube-prometheus-stack"}, rules: []string{"device-reports", "speeding"}},
		{name: "values not in the chart's files", args: []string{"-f", "testdata/helm-other-values.yaml"},
			release: "fleet-ingestion-gateway-europe-west-production-b1", namespace: "telematics-prod",
			fullname: "edge-mqtt", svcType: "NodePort", replicas: 1, ports: []string{"mqtt", "https"},
			mounts: map[string]string{"/etc/fleetgate/secrets/telematics-tls": "edge-https"}, grace: 50,
			nodePorts: map[string]int{"mqtt": 31883, "https": 31443},
			env:       map[string]string{"FLEETGATE_LOG_LEVEL": "debug", "GOMEMLIMIT": "900MiB"},
			resources: map[string]any{"requests": map[string]any{"cpu": "250m", "memory": "256Mi"}, "limits": map[string]any{"cpu": "1", "memory": "1Gi"}},
			podSecurity: map[string]any{"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
				"fsGroupChangePolicy": "OnRootMismatch"},
			prom: true, promLabels: map[string]any{"team": "fleet", "prometheus": "main"},
			rules: []string{"logs-only", "boots"}},
		{name: "a release name of 53 characters (Helm's longest)",
			args:    []string{"--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"},
			release: "fleetgate-ingestion-europe-west-1-production-blue-v2", namespace: "telematics-prod",
			fullname: "fleetgate-ingestion-europe-west-1-production-blue-v2", ports: []string{"mqtt", "https"},
			mounts: map[string]string{}, grace: 45, prom: true},
		{name: "a long release name the chart name is appended to",
			release: "telematics-ingestion-europe-west-1-production-blue-2", namespace: "telematics-prod",
			fullname: "telematics-ingestion-europe-west-1-production-blue-2-fleetgate", ports: []string{"mqtt", "https"},
			mounts: map[string]string{}, grace: 45},
		{name: "MQTT over TLS without users, ClusterIP, name override",
			args: []string{"--set", "tls.mqtt.secretName=mqtt-cert", "--set", "service.type=ClusterIP",
				"--set", "service.externalTrafficPolicy=Local", "--set", "service.nodePorts.mqtt=31883", "--set", "nameOverride=gw",
				"--set", "podDisruptionBudget.maxUnavailable=50%"},
			release: "r1", fullname: "r1-gw", svcType: "ClusterIP", ports: []string{"mqtt", "mqtts", "https"},
			mounts: map[string]string{"/etc/fleetgate/secrets/mqtt-tls": "mqtt-cert"}, grace: 45, anonymous: ptr(true)},
		{name: "users secret alone refuses anonymous clients",
			args:  []string{"--set", "auth.mqttUsers.secretName=users", "--set", "replicaCount=2"},
			ports: []string{"mqtt", "https"}, replicas: 2,
			mounts: map[string]string{"/etc/fleetgate/secrets/mqtt-users": "users"}, grace: 45, anonymous: ptr(false)},
		{name: "users secret with anonymous access kept on purpose",
			args:   []string{"--set", "auth.mqttUsers.secretName=users", "--set", "config.mqtt.auth.allow_anonymous=true"},
			ports:  []string{"mqtt", "https"},
			mounts: map[string]string{"/etc/fleetgate/secrets/mqtt-users": "users"}, grace: 45, anonymous: ptr(true)},
	}
	for _, tc := range cases {
		tc := tc.defaults()
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			lint, err := helm(t, append([]string{"lint", "--strict", chartDir, "--namespace", tc.namespace}, args...)...)
			if err != nil || !strings.Contains(lint, "0 chart(s) failed") {
				t.Errorf("helm lint --strict: %v\n%s", err, lint)
			}
			checkRelease(t, tc, renderAs(t, tc.release, tc.namespace, args...))
		})
	}
}

func ptr[T any](v T) *T { return &v }

// dns1035 is a Service name (and a DNS label): at most 63 characters.
var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// dns1123 is the name of the other objects a release renders, kept to a
// DNS label here too (label values and generated pod names build on it).
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func checkRelease(t *testing.T, tc chartCase, r release) {
	// Every object: a valid name, in the release's namespace, labelled
	// with the release.
	for _, m := range r.objects {
		re := dns1123
		if m.kind() == "Service" {
			re = dns1035
		}
		if !re.MatchString(m.name()) {
			t.Errorf("%s name %q is not a DNS label of at most 63 characters", m.kind(), m.name())
		}
		if ns := get[string](m, "metadata", "namespace"); ns != tc.namespace {
			t.Errorf("%s %s in namespace %q, want %q", m.kind(), m.name(), ns, tc.namespace)
		}
		if get[string](m, "metadata", "labels", "app.kubernetes.io/instance") != tc.release {
			t.Errorf("%s %s labels %v: no app.kubernetes.io/instance=%s", m.kind(), m.name(), get[any](m, "metadata", "labels"), tc.release)
		}
	}
	dep := r.find(t, "Deployment", tc.fullname)
	if n := get[int](dep, "spec", "replicas"); n != tc.replicas {
		t.Errorf("replicas %d, want %d", n, tc.replicas)
	}
	if !subset(get[map[string]any](dep, "spec", "selector", "matchLabels"), get[map[string]any](dep, "spec", "template", "metadata", "labels")) {
		t.Errorf("the Deployment's selector %v does not select its own pods", get[any](dep, "spec", "selector"))
	}
	pod := get[map[string]any](dep, "spec", "template", "spec")
	containers := get[[]any](pod, "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers", len(containers))
	}
	c := containers[0]

	// Ports: every container port named, the Services' target ports exist.
	cports := map[string]int{}
	for _, p := range get[[]any](c, "ports") {
		cports[get[string](p, "name")] = get[int](p, "containerPort")
	}
	if cports["admin"] != 8080 || cports["mqtt"] != 1883 || cports["https"] != 8443 {
		t.Errorf("container ports %v", cports)
	}
	svc := r.find(t, "Service", tc.fullname)
	if typ := get[string](svc, "spec", "type"); typ != tc.svcType {
		t.Errorf("terminal Service type %q, want %s", typ, tc.svcType)
	}
	if tc.svcType == "ClusterIP" && get[string](svc, "spec", "externalTrafficPolicy") != "" {
		t.Error("a ClusterIP Service with externalTrafficPolicy: Kubernetes refuses it")
	}
	nodePorts := map[string]int{}
	for _, p := range get[[]any](svc, "spec", "ports") {
		if n := get[int](p, "nodePort"); n != 0 {
			nodePorts[get[string](p, "name")] = n
		}
	}
	if len(nodePorts)+len(tc.nodePorts) > 0 && !reflect.DeepEqual(nodePorts, tc.nodePorts) {
		t.Errorf("node ports %v, want %v", nodePorts, tc.nodePorts)
	}
	var names []string
	for _, p := range get[[]any](svc, "spec", "ports") {
		names = append(names, get[string](p, "name"))
		if _, ok := cports[get[string](p, "targetPort")]; !ok {
			t.Errorf("Service port %s targets %q, which the container does not have", get[string](p, "name"), get[string](p, "targetPort"))
		}
	}
	if !slices.Equal(names, tc.ports) {
		t.Errorf("terminal Service ports %v, want %v", names, tc.ports)
	}
	var admin manifest
	for _, m := range r.objects {
		if m.kind() == "Service" && get[string](m, "metadata", "labels", "app.kubernetes.io/component") == "admin" {
			admin = m
		}
	}
	if admin == nil {
		t.Fatal("no admin Service (app.kubernetes.io/component: admin)")
	}
	if get[string](admin, "spec", "type") != "ClusterIP" || get[string](admin, "spec", "ports", 0, "targetPort") != "admin" {
		t.Errorf("admin Service: %v", get[any](admin, "spec"))
	}
	podLabels := get[map[string]any](dep, "spec", "template", "metadata", "labels")
	for _, s := range []manifest{svc, admin} {
		if !subset(get[map[string]any](s, "spec", "selector"), podLabels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.name(), get[any](s, "spec", "selector"), podLabels)
		}
	}

	// Probes on the admin port.
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if get[string](c, probe, "httpGet", "path") != path || get[string](c, probe, "httpGet", "port") != "admin" {
			t.Errorf("%s: %v, want GET %s on port admin", probe, get[any](c, probe), path)
		}
	}

	// Security: non-root, read-only root, no privileges.
	if get[bool](pod, "securityContext", "runAsNonRoot") != true || get[int](pod, "securityContext", "runAsUser") == 0 {
		t.Errorf("pod securityContext %v: want runAsNonRoot and a non-zero runAsUser", get[any](pod, "securityContext"))
	}
	sc := get[map[string]any](c, "securityContext")
	if get[bool](sc, "readOnlyRootFilesystem") != true || get[bool](sc, "allowPrivilegeEscalation") != false ||
		!slices.Equal(get[[]any](sc, "capabilities", "drop"), []any{"ALL"}) {
		t.Errorf("container securityContext %v", sc)
	}
	if get[bool](pod, "automountServiceAccountToken") {
		t.Error("the pod mounts a service account token it does not need")
	}
	if get[string](c, "resources", "requests", "memory") == "" || get[string](c, "resources", "limits", "memory") == "" {
		t.Errorf("resources %v: want memory requests and limits", get[any](c, "resources"))
	}
	if tc.resources != nil && !reflect.DeepEqual(get[map[string]any](c, "resources"), tc.resources) {
		t.Errorf("resources %v, want %v", get[any](c, "resources"), tc.resources)
	}
	for k, v := range tc.podSecurity {
		if got := get[any](pod, "securityContext", k); got != v {
			t.Errorf("pod securityContext.%s = %v, want %v", k, got, v)
		}
	}
	// The pod's user can write only the emptyDir volumes: the root
	// filesystem is read-only, and fleetgate writes nothing but
	// temporary files (/tmp).
	writable := map[string]bool{}
	for _, m := range get[[]any](c, "volumeMounts") {
		if v := findVolume(pod, get[string](m, "name")); v != nil && v["emptyDir"] != nil {
			writable[get[string](m, "mountPath")] = true
		} else if !get[bool](m, "readOnly") {
			t.Errorf("volume mount %v is writable but not an emptyDir", m)
		}
	}
	if !writable["/tmp"] {
		t.Errorf("no emptyDir at /tmp (writable mounts %v)", writable)
	}

	// Mounts: directories, never subPath (a subPath mount never sees a
	// ConfigMap update, so rules would not hot-reload); the ConfigMap at
	// the config's directory; each Secret where the config points.
	volumes := map[string]map[string]any{}
	for _, v := range get[[]any](pod, "volumes") {
		volumes[get[string](v, "name")] = v.(map[string]any)
	}
	secretMounts := map[string]string{}
	var configDir string
	for _, m := range get[[]any](c, "volumeMounts") {
		if get[string](m, "subPath") != "" {
			t.Errorf("volume mount %v uses subPath", m)
		}
		v := volumes[get[string](m, "name")]
		switch {
		case v == nil:
			t.Errorf("volume mount %v has no volume", m)
		case get[string](v, "configMap", "name") != "":
			configDir = get[string](m, "mountPath")
			if get[string](v, "configMap", "name") != r.find(t, "ConfigMap", "").name() {
				t.Errorf("config volume names ConfigMap %q", get[string](v, "configMap", "name"))
			}
		case get[string](v, "secret", "secretName") != "":
			secretMounts[get[string](m, "mountPath")] = get[string](v, "secret", "secretName")
			if !get[bool](m, "readOnly") {
				t.Errorf("secret mount %v is not read-only", m)
			}
		}
	}
	if !reflect.DeepEqual(secretMounts, tc.mounts) {
		t.Errorf("secret mounts %v, want %v", secretMounts, tc.mounts)
	}
	args := get[[]any](c, "args")
	if configDir == "" || !slices.Equal(args, []any{"serve", "--config", configDir + "/config.yaml"}) {
		t.Errorf("args %v with the ConfigMap at %q", args, configDir)
	}
	plainEnv := map[string]string{}
	for _, e := range get[[]any](c, "env") {
		if get[any](e, "valueFrom") == nil {
			plainEnv[get[string](e, "name")] = get[string](e, "value")
		}
	}
	for k, v := range tc.env {
		if plainEnv[k] != v {
			t.Errorf("env %s = %q, want %q (env %v)", k, plainEnv[k], v, plainEnv)
		}
	}
	if tc.envSecret != "" {
		env := get[[]any](c, "env")
		if get[string](env, 0, "name") != "FLEETGATE_KAFKA_SASL_PASSWORD" || get[string](env, 0, "valueFrom", "secretKeyRef", "name") != tc.envSecret {
			t.Errorf("env %v: want the SASL password from Secret %s", env, tc.envSecret)
		}
	}

	// The ConfigMap is a configuration the gateway loads, and every file
	// it names is in a mounted Secret.
	cm := r.find(t, "ConfigMap", "")
	// Loaded with the pod's plain environment (FLEETGATE_* override keys).
	cfg := loadRendered(t, cm, plainEnv)
	if lvl, ok := tc.env["FLEETGATE_LOG_LEVEL"]; ok && cfg.Log.Level != lvl {
		t.Errorf("log.level %q with FLEETGATE_LOG_LEVEL=%s in the pod's env", cfg.Log.Level, lvl)
	}
	if tc.anonymous != nil && cfg.MQTT.Auth.AllowAnonymous != *tc.anonymous {
		t.Errorf("mqtt.auth.allow_anonymous %v, want %v (users file %q)", cfg.MQTT.Auth.AllowAnonymous, *tc.anonymous, cfg.MQTT.Auth.UsersFile)
	}
	if got := filepath.Base(cfg.MQTT.TLS.CRLFile); cfg.MQTT.TLS.CRLFile == "" && tc.crl != "" || cfg.MQTT.TLS.CRLFile != "" && got != tc.crl {
		t.Errorf("mqtt.tls.crl_file %q, want one named %q", cfg.MQTT.TLS.CRLFile, tc.crl)
	}
	if tc.rules != nil {
		var names []string
		for _, rl := range cfg.Rules {
			names = append(names, rl.Name)
		}
		if !slices.Equal(names, tc.rules) {
			t.Errorf("the pod loads rules %v, want %v", names, tc.rules)
		}
	}
	// The probes and Services reach the ports the pod listens on.
	for name, addr := range map[string]string{"admin": cfg.Admin.Listen, "mqtt": cfg.MQTT.Listen, "mqtts": cfg.MQTT.TLSListen, "https": cfg.Telematics.Listen} {
		if addr == "" {
			continue
		}
		host, port, _ := strings.Cut(addr, ":")
		if port != strconv.Itoa(cports[name]) {
			t.Errorf("the config listens for %s on %q, the container port %s is %d", name, addr, name, cports[name])
		}
		if host != "" && host != "0.0.0.0" {
			t.Errorf("%s listens on %q: not reachable from the kubelet's probes or the Services", name, addr)
		}
	}
	if cfg.Admin.Listen != "0.0.0.0:8080" || cfg.MQTT.Listen != ":1883" || cfg.Telematics.Listen != ":8443" {
		t.Errorf("listeners in the rendered config: admin %q mqtt %q telematics %q", cfg.Admin.Listen, cfg.MQTT.Listen, cfg.Telematics.Listen)
	}
	if filepath.Base(cfg.RulesFile) != "rules.yaml" || len(cfg.Rules) == 0 {
		t.Errorf("rules_file %q", cfg.RulesFile)
	}
	used := map[string]bool{} // secret mounts the config names a file in
	for _, f := range []string{cfg.MQTT.TLS.CertFile, cfg.MQTT.TLS.KeyFile, cfg.MQTT.TLS.ClientCAFile, cfg.MQTT.TLS.CRLFile, cfg.MQTT.Auth.UsersFile, cfg.MQTT.ACLFile,
		cfg.Telematics.TLS.CertFile, cfg.Telematics.TLS.KeyFile, cfg.Telematics.Auth.TokensFile, cfg.Kafka.TLS.CAFile} {
		// loadRendered moved the pod's secrets directory under the test's.
		if i := strings.Index(f, "/secrets/"); i >= 0 {
			f = "/etc/fleetgate" + f[i:]
		}
		if f != "" && secretMounts[filepath.Dir(f)] == "" {
			t.Errorf("the config names %s, which is in no mounted Secret (%v)", f, secretMounts)
		}
		used[filepath.Dir(f)] = true
	}
	for dir, secret := range secretMounts {
		if !used[dir] {
			t.Errorf("Secret %s is mounted at %s but the config names no file in it", secret, dir)
		}
	}
	if (cfg.MQTT.TLSListen != "") != slices.Contains(tc.ports, "mqtts") {
		t.Errorf("mqtt.tls_listen %q with Service ports %v", cfg.MQTT.TLSListen, tc.ports)
	}

	// The grace period covers the preStop sleep and the whole drain.
	grace := get[int](pod, "terminationGracePeriodSeconds")
	preStop := time.Duration(get[int](c, "lifecycle", "preStop", "sleep", "seconds")) * time.Second
	if grace != tc.grace || time.Duration(grace)*time.Second <= gateway.DrainTimeout(cfg)+preStop {
		t.Errorf("terminationGracePeriodSeconds %d: want %d, above the drain %s + preStop %s", grace, tc.grace, gateway.DrainTimeout(cfg), preStop)
	}

	pdb := r.find(t, "PodDisruptionBudget", tc.fullname)
	if !subset(get[map[string]any](pdb, "spec", "selector", "matchLabels"), podLabels) || get[any](pdb, "spec", "maxUnavailable") == 0 ||
		get[any](pdb, "spec", "minAvailable") != nil {
		t.Errorf("PodDisruptionBudget %v", get[any](pdb, "spec"))
	}

	if !tc.prom {
		if r.count("ServiceMonitor")+r.count("PrometheusRule") != 0 {
			t.Error("Prometheus operator objects rendered though not enabled")
		}
		return
	}
	sm := r.find(t, "ServiceMonitor", tc.fullname)
	if !subset(get[map[string]any](sm, "spec", "selector", "matchLabels"), get[map[string]any](admin, "metadata", "labels")) ||
		subset(get[map[string]any](sm, "spec", "selector", "matchLabels"), get[map[string]any](svc, "metadata", "labels")) {
		t.Errorf("ServiceMonitor selects %v: want the admin Service only", get[any](sm, "spec", "selector"))
	}
	if get[string](sm, "spec", "endpoints", 0, "port") != "admin" || get[string](sm, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %v", get[any](sm, "spec", "endpoints"))
	}
	for k, v := range tc.promLabels {
		if get[any](sm, "metadata", "labels", k) != v {
			t.Errorf("ServiceMonitor labels %v: want %s=%v", get[any](sm, "metadata", "labels"), k, v)
		}
	}
	pr := r.find(t, "PrometheusRule", tc.fullname)
	for k, v := range tc.promLabels {
		if get[any](pr, "metadata", "labels", k) != v {
			t.Errorf("PrometheusRule labels %v: want %s=%v", get[any](pr, "metadata", "labels"), k, v)
		}
	}
	var alerts map[string]any
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &alerts); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(get[any](pr, "spec", "groups"), alerts["groups"]) {
		t.Error("the PrometheusRule's groups are not those of deploy/prometheus/alerts.yml")
	}
}

func findVolume(pod map[string]any, name string) map[string]any {
	for _, v := range get[[]any](pod, "volumes") {
		if get[string](v, "name") == name {
			return v.(map[string]any)
		}
	}
	return nil
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// loadRendered writes the ConfigMap's files to a directory and loads them
// as the gateway would, with env as the environment.
func loadRendered(t *testing.T, cm manifest, env map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	// Secrets are mounted under /etc/fleetgate/secrets in the pod: here
	// each file the configuration names there is an empty one (a users file
	// of no users) under the test's directory, so that Load, which reads
	// the users and policy files, sees the layout the pod has.
	secrets := filepath.Join(dir, "secrets")
	for name, content := range get[map[string]any](cm, "data") {
		text := content.(string)
		for _, m := range regexp.MustCompile(`/etc/fleetgate/secrets/[^\s"']+`).FindAllString(text, -1) {
			path := filepath.Join(secrets, strings.TrimPrefix(m, "/etc/fleetgate/secrets/"))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			var body []byte // an empty users or tokens file
			if strings.Contains(m, "/mqtt-policy/") {
				body = policy.DefaultYAML()
			}
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		text = strings.ReplaceAll(text, "/etc/fleetgate/secrets/", secrets+"/")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the rendered ConfigMap does not load: %v", err)
	}
	return cfg
}

// TestHelmChartRefusesShortGrace: a grace period that would SIGKILL the
// drain does not render.
func TestHelmChartRefusesShortGrace(t *testing.T) {
	for _, args := range [][]string{
		{"--set", "terminationGracePeriodSeconds=40"},
		{"-f", productionVals, "--set", "terminationGracePeriodSeconds=60"},
		{"--set", "config.kafka.delivery_timeout=2m"},
	} {
		_, err := helm(t, append([]string{"template", "fleetgate", chartDir}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSeconds") {
			t.Errorf("helm template %v: %v; want a refusal naming terminationGracePeriodSeconds", args, err)
		}
	}
	if _, err := helm(t, "template", "fleetgate", chartDir, "--set", "config.kafka.delivery_timeout=2m", "--set", "terminationGracePeriodSeconds=131"); err != nil {
		t.Error(err)
	}
}

// TestHelmRulesChangeKeepsPods: the pods' checksum covers the
// configuration, not the rules, so a rules change reaches running pods by
// the ConfigMap update (hot reload) instead of a rollout.
func TestHelmRulesChangeKeepsPods(t *testing.T) {
	sum := func(args ...string) string {
		dep := render(t, args...).find(t, "Deployment", "fleetgate")
		return get[string](dep, "spec", "template", "metadata", "annotations", "checksum/config")
	}
	base := sum()
	if base == "" {
		t.Fatal("no checksum/config annotation")
	}
	if s := sum("--set", "rules[0].name=renamed"); s != base {
		t.Error("a rules change changes the pod template: it would restart every pod instead of reloading")
	}
	if s := sum("--set", "config.log.level=debug"); s == base {
		t.Error("a configuration change does not change the pod template: pods would keep the old configuration")
	}
}

// TestPrometheusRuleFileIsTheAlerts: the chart carries a copy of the alerts
// (Helm reads only files inside the chart).
func TestPrometheusRuleFileIsTheAlerts(t *testing.T) {
	a, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(chartDir + "/files/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s/files/alerts.yml differs from prometheus/alerts.yml; run: cp deploy/prometheus/alerts.yml deploy/%s/files/alerts.yml", chartDir, chartDir)
	}
}

// TestHelmValuesDocumented: every key of values.yaml is in the chart's
// README (maps under config and rules are fleetgate's own, documented in
// docs/configuration.md and docs/rules.md).
func TestHelmValuesDocumented(t *testing.T) {
	b, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		// Free-form maps (annotations, labels, probes, resources, security
		// contexts) are documented as a whole.
		if !ok || len(m) == 0 || prefix == "config" || strings.HasSuffix(prefix, "Probe") || prefix == "resources" ||
			strings.HasSuffix(prefix, "ecurityContext") || strings.HasSuffix(prefix, "labels") || strings.HasSuffix(prefix, "annotations") {
			if !strings.Contains(string(readme), "`"+prefix+"`") {
				t.Errorf("value %s is not documented in %s/README.md", prefix, chartDir)
			}
			return
		}
		for k, sub := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			walk(key, sub)
		}
	}
	walk("", values)
}

// TestHelmChartRefusesBlockingPDB: a budget of no unavailable instance
// would block every node drain and cluster upgrade: it does not render.
func TestHelmChartRefusesBlockingPDB(t *testing.T) {
	for _, v := range []string{"0", "0%"} {
		_, err := helm(t, "template", "fleetgate", chartDir, "--set-string", "podDisruptionBudget.maxUnavailable="+v)
		if err == nil || !strings.Contains(err.Error(), "podDisruptionBudget.maxUnavailable") {
			t.Errorf("maxUnavailable %s: %v; want a refusal naming podDisruptionBudget.maxUnavailable", v, err)
		}
	}
	if _, err := helm(t, "template", "fleetgate", chartDir, "--set", "podDisruptionBudget.maxUnavailable=0", "--set", "podDisruptionBudget.enabled=false"); err != nil {
		t.Error(err)
	}
}
