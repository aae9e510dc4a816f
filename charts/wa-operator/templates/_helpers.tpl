{{/* The objects' name: the release name, or <release>-wa-operator when that does not contain it. */}}
{{- define "wa-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* What selects the operator's pods: stable for the release's lifetime. */}}
{{- define "wa-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wa-operator.labels" -}}
{{ include "wa-operator.selectorLabels" . }}
app.kubernetes.io/part-of: wa-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator's settings as environment variables; unset values keep its defaults. */}}
{{- define "wa-operator.env" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: LEADER_ELECTION
  value: {{ .Values.leaderElection.enabled | quote }}
- name: HTTP_ADDRESS
  value: ":8080"
- name: METRICS_ADDRESS
  value: ":8081"
{{- with .Values.leaderElection.leaseDuration }}
- name: LEASE_DURATION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.watchNamespaces }}
- name: WATCH_NAMESPACES
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.logLevel }}
- name: LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.concurrency }}
- name: CONCURRENCY
  value: {{ . | quote }}
{{- end }}
{{- with .Values.pollIntervals.status }}
- name: POLL_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.pollIntervals.pairing }}
- name: PAIRING_POLL_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.pollIntervals.providerCheck }}
- name: PROVIDER_CHECK_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.pollIntervals.resync }}
- name: RESYNC_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
