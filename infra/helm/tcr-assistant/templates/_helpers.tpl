{{/*
Names, labels and shared pieces. Components (relay, worker, hosts-updater, and whatever comes next, such as
a webhook) each have their own <component>-*.yaml files and use these helpers with (list $ "<component>").
*/}}

{{- define "tcr-assistant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tcr-assistant.fullname" -}}
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

{{/* <fullname>-<component>, e.g. tcr-assistant-relay. Usage: include "tcr-assistant.componentName" (list $ "relay") */}}
{{- define "tcr-assistant.componentName" -}}
{{- $ctx := index . 0 }}{{- $component := index . 1 }}
{{- printf "%s-%s" (include "tcr-assistant.fullname" $ctx | trunc (int (sub 62 (len $component)))) $component | trimSuffix "-" }}
{{- end }}

{{- define "tcr-assistant.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tcr-assistant.selectorLabels" -}}
{{- $ctx := index . 0 }}{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ include "tcr-assistant.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end }}

{{- define "tcr-assistant.labels" -}}
{{- $ctx := index . 0 -}}
helm.sh/chart: {{ include "tcr-assistant.chart" $ctx }}
{{ include "tcr-assistant.selectorLabels" . }}
app.kubernetes.io/part-of: tcr-assistant
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tcr-assistant.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tcr-assistant.redisSecretName" -}}
{{- if .Values.redis.existingSecret.name }}{{ .Values.redis.existingSecret.name }}{{ else }}{{ include "tcr-assistant.componentName" (list . "redis") }}{{ end }}
{{- end }}

{{- define "tcr-assistant.redisSecretKey" -}}
{{- if .Values.redis.existingSecret.name }}{{ .Values.redis.existingSecret.key }}{{ else }}url{{ end }}
{{- end }}

{{/*
Checks that JSON schema cannot express (it names the value and says what to do). Included by every template
that renders a workload, so `helm template` and `helm install` both stop here.
*/}}
{{- define "tcr-assistant.validate" -}}
{{- if ne .Release.Namespace "tcr-assistant-system" }}
{{- fail (printf "namespace: install into tcr-assistant-system (helm install ... -n tcr-assistant-system --create-namespace), not %s: the functions keep their tokens, API keys and the hosts map there" .Release.Namespace) }}
{{- end }}
{{- if not .Values.clusterId }}
{{- fail "clusterId: required: a name for this cluster in jobs, audit and the fleet view (e.g. --set clusterId=prod-gz)" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret.name }}
{{- fail "redis: set redis.url or redis.existingSecret.name, not both" }}
{{- end }}
{{- if not (or .Values.redis.url .Values.redis.existingSecret.name) }}
{{- fail "redis: set redis.url (redis://host:6379) or redis.existingSecret.name (a Secret holding the URL)" }}
{{- end }}
{{- if and .Values.worker.keda.enabled (not .Values.worker.keda.address) }}
{{- fail "worker.keda.address: required with worker.keda.enabled (the Redis host:port KEDA reads the wait list from)" }}
{{- end }}
{{- if and .Values.kubernetesApi.host (not .Values.kubernetesApi.port) }}
{{- fail "kubernetesApi.port: required with kubernetesApi.host" }}
{{- end }}
{{- end }}

{{/*
The Deployments of a component: one with N replicas, or with hostNetwork one per replica, each on its own port
(replicas on one node share the node's ports). Usage: include "tcr-assistant.instances" (list $ replicas port)
→ YAML list of {suffix, replicas, port, index}.
*/}}
{{- define "tcr-assistant.instances" -}}
{{- $ctx := index . 0 }}{{- $replicas := int (index . 1) }}{{- $port := int (index . 2) }}
{{- if $ctx.Values.hostNetwork }}
{{- range $i := until $replicas }}
- { suffix: "-{{ $i }}", replicas: 1, port: {{ add $port $i }}, index: {{ $i }} }
{{- end }}
{{- else }}
- { suffix: "", replicas: {{ $replicas }}, port: {{ $port }}, index: 0 }
{{- end }}
{{- end }}

{{/* Environment every component that talks to Redis and the API server gets. */}}
{{- define "tcr-assistant.commonEnv" -}}
- name: CLUSTER_ID
  value: {{ .Values.clusterId | quote }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tcr-assistant.redisSecretName" . }}
      key: {{ include "tcr-assistant.redisSecretKey" . }}
- name: QUEUE_PREFIX
  value: {{ .Values.redis.queuePrefix | quote }}
- name: JOB_ATTEMPTS
  value: {{ .Values.jobs.attempts | quote }}
- name: JOB_BACKOFF_MS
  value: {{ .Values.jobs.backoffMs | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- include "tcr-assistant.apiServerEnv" . }}
{{- end }}

{{- define "tcr-assistant.apiServerEnv" -}}
{{- if .Values.kubernetesApi.host }}
# In-cluster config reads these; set explicitly, they win over the kubelet's service variables.
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.kubernetesApi.host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.kubernetesApi.port | quote }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the Deployments: (list $ componentValues) */}}
{{- define "tcr-assistant.podCommon" -}}
{{- $ctx := index . 0 }}{{- $c := index . 1 -}}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $ctx.Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- with $ctx.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Spread replicas over nodes unless the user gave an affinity: (list $ componentValues componentName) */}}
{{- define "tcr-assistant.affinity" -}}
{{- $ctx := index . 0 }}{{- $c := index . 1 }}{{- $component := index . 2 -}}
affinity:
{{- if $c.affinity }}
  {{- toYaml $c.affinity | nindent 2 }}
{{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "tcr-assistant.selectorLabels" (list $ctx $component) | nindent 14 }}
{{- end }}
{{- end }}

{{/* BullMQ's queue name (shared/contracts/jobs.ts QUEUE_NAME; a test keeps them equal). */}}
{{- define "tcr-assistant.queueName" -}}reconcile{{- end }}
