{{/* The chart's name, or nameOverride: the app.kubernetes.io/name label. */}}
{{- define "wa-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' name: fullnameOverride, else the release name, or <release>-<name> when that does not contain it. */}}
{{- define "wa-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "wa-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* What selects the operator's pods: stable for the release's lifetime. */}}
{{- define "wa-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wa-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* commonLabels over global.commonLabels (an umbrella chart's). */}}
{{- define "wa-operator.commonLabels" -}}
{{- $global := (.Values.global | default dict).commonLabels | default dict -}}
{{- with merge (deepCopy (.Values.commonLabels | default dict)) (deepCopy $global) -}}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{- define "wa-operator.labels" -}}
{{ include "wa-operator.selectorLabels" . }}
app.kubernetes.io/part-of: wa-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with include "wa-operator.commonLabels" . }}
{{ . }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount the pods run as, and RBAC binds. */}}
{{- define "wa-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wa-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's image: by digest when one is set, else by tag (appVersion when empty). */}}
{{- define "wa-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets, then global.imagePullSecrets. */}}
{{- define "wa-operator.imagePullSecrets" -}}
{{- $secrets := concat (.Values.imagePullSecrets | default list) ((.Values.global | default dict).imagePullSecrets | default list) -}}
{{- with $secrets -}}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* A duration setting as an environment variable, when set. */}}
{{- define "wa-operator.envIfSet" -}}
{{- if not (kindIs "invalid" .value) }}{{ if ne (toString .value) "" }}
- name: {{ .name }}
  value: {{ toString .value | quote }}
{{- end }}{{ end -}}
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
{{- include "wa-operator.envIfSet" (dict "name" "LEASE_DURATION" "value" .Values.leaderElection.leaseDuration) }}
{{- include "wa-operator.envIfSet" (dict "name" "LEASE_NAME" "value" .Values.leaderElection.leaseName) }}
{{- with .Values.watchNamespaces }}
- name: WATCH_NAMESPACES
  value: {{ join "," . | quote }}
{{- end }}
{{- include "wa-operator.envIfSet" (dict "name" "LOG_LEVEL" "value" .Values.logLevel) }}
{{- include "wa-operator.envIfSet" (dict "name" "CONCURRENCY" "value" .Values.concurrency) }}
{{- include "wa-operator.envIfSet" (dict "name" "POLL_INTERVAL" "value" .Values.pollIntervals.status) }}
{{- include "wa-operator.envIfSet" (dict "name" "PAIRING_POLL_INTERVAL" "value" .Values.pollIntervals.pairing) }}
{{- include "wa-operator.envIfSet" (dict "name" "PROVIDER_CHECK_INTERVAL" "value" .Values.pollIntervals.providerCheck) }}
{{- include "wa-operator.envIfSet" (dict "name" "RESYNC_INTERVAL" "value" .Values.pollIntervals.resync) }}
{{- include "wa-operator.envIfSet" (dict "name" "QR_REFRESH_INTERVAL" "value" .Values.qrRefreshInterval) }}
{{- include "wa-operator.envIfSet" (dict "name" "STUCK_TIMEOUT" "value" .Values.stuckTimeout) }}
{{- include "wa-operator.envIfSet" (dict "name" "FAILURE_BACKOFF" "value" .Values.failureBackoff) }}
{{- include "wa-operator.envIfSet" (dict "name" "FAILURE_BACKOFF_MAX" "value" .Values.failureBackoffMax) }}
{{- include "wa-operator.envIfSet" (dict "name" "PROVIDER_TIMEOUT" "value" .Values.providerTimeout) }}
{{- include "wa-operator.envIfSet" (dict "name" "PROVIDER_MAX_IN_FLIGHT" "value" .Values.providerMaxInFlight) }}
{{- include "wa-operator.envIfSet" (dict "name" "PROVIDER_MAX_PAUSE" "value" .Values.providerMaxPause) }}
{{- include "wa-operator.envIfSet" (dict "name" "PROVIDER_MAX_WORKERS" "value" .Values.providerMaxWorkers) }}
{{- include "wa-operator.envIfSet" (dict "name" "EGRESS_DENY_CIDRS" "value" .Values.egressDenyCidrs) }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
