{{/* Chart name, overridable. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name. */}}
{{- define "sluice.fullname" -}}
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

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
sluice.toml. Strings and arrays are written with toJson: a JSON string or array of
strings is valid TOML. Top-level keys come before the tables.
*/}}
{{- define "sluice.config" -}}
{{- if .Values.config.raw }}
{{- .Values.config.raw }}
{{- else }}
{{- $c := .Values.config -}}
# Rendered by the sluice Helm chart.
listen = {{ printf "0.0.0.0:%d" (int .Values.ports.http) | toJson }}
pg_listen = {{ printf "0.0.0.0:%d" (int .Values.ports.pgwire) | toJson }}
data_dir = {{ .Values.persistence.mountPath | toJson }}
{{- if $c.checkpointDir }}
checkpoint_dir = {{ $c.checkpointDir | toJson }}
{{- end }}
checkpoint_interval = {{ $c.checkpointInterval | toString | toJson }}
{{- if $c.allowAnonymous }}
allow_anonymous = true
{{- else if not .Values.apiKeys }}
{{- fail "apiKeys is empty: the server refuses to listen without API keys. Add apiKeys, or set config.allowAnonymous=true" }}
{{- end }}
{{- if $c.tls.secretName }}

[tls]
cert = "/etc/sluice/tls/tls.crt"
key = "/etc/sluice/tls/tls.key"
{{- end }}

[limits]
max_body_bytes = {{ int64 $c.limits.maxBodyBytes }}
requests_per_second = {{ int64 $c.limits.requestsPerSecond }}
{{- range .Values.apiKeys }}

[[api_keys]]
name = {{ required "apiKeys[].name is required" .name | toJson }}
scopes = {{ required "apiKeys[].scopes is required" .scopes | toJson }}
sha256 = {{ required "apiKeys[].sha256 is required" .sha256 | lower | toJson }}
{{- end }}
{{- end }}
{{- end }}

{{/* HTTP or HTTPS, for probes and the ServiceMonitor. */}}
{{- define "sluice.scheme" -}}
{{- if and (not .Values.config.raw) .Values.config.tls.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}
