{{/* Chart name, truncated for label values. */}}
{{- define "fleetgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name of every object. */}}
{{- define "fleetgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The admin Service's name: the full name cut to leave room for "-admin"
     (a Service name is a DNS label of at most 63 characters). */}}
{{- define "fleetgate.adminName" -}}
{{- printf "%s-admin" (include "fleetgate.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "fleetgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fleetgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fleetgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "fleetgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fleetgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where the ConfigMap and the Secrets are mounted (directories, never subPath:
     a subPath mount does not see ConfigMap updates, and rules hot reload needs them). */}}
{{- define "fleetgate.configDir" -}}/etc/fleetgate/config{{- end }}
{{- define "fleetgate.secretsDir" -}}/etc/fleetgate/secrets{{- end }}

{{/* The configuration file: .Values.config with the keys the chart owns on top. */}}
{{- define "fleetgate.config" -}}
{{- $s := include "fleetgate.secretsDir" . -}}
{{- $owned := dict
  "admin" (dict "listen" "0.0.0.0:8080")
  "mqtt" (dict "listen" ":1883")
  "telematics" (dict "listen" ":8443")
  "rules_file" "rules.yaml" -}}
{{- with .Values.tls.mqtt.secretName }}
{{- $tls := dict "cert_file" (printf "%s/mqtt-tls/tls.crt" $s) "key_file" (printf "%s/mqtt-tls/tls.key" $s) }}
{{- with $.Values.tls.mqtt.clientCAKey }}{{ $_ := set $tls "client_ca_file" (printf "%s/mqtt-tls/%s" $s .) }}{{ end }}
{{- with $.Values.tls.mqtt.crlKey }}{{ $_ := set $tls "crl_file" (printf "%s/mqtt-tls/%s" $s .) }}{{ end }}
{{- $_ := set $owned.mqtt "tls_listen" ":8883" }}
{{- $_ := set $owned.mqtt "tls" $tls }}
{{- end }}
{{- with .Values.auth.mqttUsers.secretName }}
{{- $_ := set $owned.mqtt "auth" (dict "users_file" (printf "%s/mqtt-users/%s" $s $.Values.auth.mqttUsers.key)) }}
{{- end }}
{{- with .Values.auth.mqttPolicy.secretName }}
{{- $_ := set $owned.mqtt "acl_file" (printf "%s/mqtt-policy/%s" $s $.Values.auth.mqttPolicy.key) }}
{{- end }}
{{- /* A users file or client CA means authentication: anonymous clients are
       refused unless config.mqtt.auth.allow_anonymous says true (fleetgate's
       own default, true, is for running without any). */}}
{{- if or .Values.auth.mqttUsers.secretName (and .Values.tls.mqtt.secretName .Values.tls.mqtt.clientCAKey) }}
{{- $auth := default (dict) $owned.mqtt.auth }}
{{- $_ := set $auth "allow_anonymous" (dig "mqtt" "auth" "allow_anonymous" false .Values.config) }}
{{- $_ := set $owned.mqtt "auth" $auth }}
{{- end }}
{{- with .Values.tls.telematics.secretName }}
{{- $_ := set $owned.telematics "tls" (dict "cert_file" (printf "%s/telematics-tls/tls.crt" $s) "key_file" (printf "%s/telematics-tls/tls.key" $s)) }}
{{- end }}
{{- with .Values.auth.telematicsTokens.secretName }}
{{- $_ := set $owned.telematics "auth" (dict "tokens_file" (printf "%s/telematics-tokens/%s" $s $.Values.auth.telematicsTokens.key)) }}
{{- end }}
{{- with .Values.tls.kafka.secretName }}
{{- $ktls := dict "enabled" true "ca_file" (printf "%s/kafka-tls/ca.crt" $s) }}
{{- if $.Values.tls.kafka.clientCert }}
{{- $_ := set $ktls "cert_file" (printf "%s/kafka-tls/tls.crt" $s) }}
{{- $_ := set $ktls "key_file" (printf "%s/kafka-tls/tls.key" $s) }}
{{- end }}
{{- $_ := set $owned "kafka" (dict "tls" $ktls) }}
{{- end }}
{{- if hasKey .Values.config "rules" }}
{{- fail "config.rules: put the rules in .Values.rules (the chart writes them to rules.yaml for hot reload)" }}
{{- end }}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.config) $owned) }}
{{- end }}

{{/* kafka.delivery_timeout in whole seconds (default 30s); written as Ns or Nm. */}}
{{- define "fleetgate.deliveryTimeoutSeconds" -}}
{{- $d := toString (default "30s" (dig "kafka" "delivery_timeout" "30s" .Values.config)) -}}
{{- if regexMatch "^[0-9]+s$" $d -}}
{{- trimSuffix "s" $d | atoi -}}
{{- else if regexMatch "^[0-9]+m$" $d -}}
{{- mul (trimSuffix "m" $d | atoi) 60 -}}
{{- else -}}
{{- fail (printf "config.kafka.delivery_timeout: %q; the chart needs whole seconds or minutes (30s, 2m) to check terminationGracePeriodSeconds" $d) -}}
{{- end -}}
{{- end }}
