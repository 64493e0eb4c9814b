{{/*
Names, labels and the role table shared by every template.
*/}}

{{- define "longview.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "longview.fullname" -}}
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

{{- define "longview.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "longview.selectorLabels" -}}
app.kubernetes.io/name: {{ include "longview.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "longview.labels" -}}
helm.sh/chart: {{ include "longview.chart" . }}
{{ include "longview.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: longview
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of one role's objects; call with (dict "root" $ "role" $r).
*/}}
{{- define "longview.roleLabels" -}}
{{ include "longview.labels" .root }}
app.kubernetes.io/component: {{ .role.component }}
{{- end }}

{{- define "longview.roleSelectorLabels" -}}
{{ include "longview.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role.component }}
{{- end }}

{{- define "longview.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "longview.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The roles this release runs, as a JSON list (read it with fromJsonArray). Each entry:
key (its values block), target (`longview serve --target`), component (label), name
(objects' name) and health (the grpc.health.v1 service name its probes ask for).
allInOne.enabled renders one Deployment with --target all and nothing else.
*/}}
{{- define "longview.roles" -}}
{{- $fullname := include "longview.fullname" . }}
{{- $health := dict
  "worker" "longview.worker.v1.Worker"
  "classify" "longview.v1.Classify"
  "sentiment" "longview.v1.Sentiment"
  "rag" "longview.v1.Rag"
  "recommend" "longview.v1.Recommend"
  "monitor" "longview.v1.Monitor" }}
{{- $roles := list }}
{{- if .Values.allInOne.enabled }}
{{- $roles = append $roles (dict "key" "allInOne" "target" "all" "component" "all-in-one" "name" $fullname "health" "") }}
{{- else }}
{{- range $key := list "worker" "classify" "sentiment" "rag" "recommend" "monitor" }}
{{- if (index $.Values $key).enabled }}
{{- $name := printf "%s-%s" $fullname $key | trunc 63 | trimSuffix "-" }}
{{- $roles = append $roles (dict "key" $key "target" $key "component" $key "name" $name "health" (index $health $key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $roles }}
{{- fail "no role is enabled: set allInOne.enabled, or enable at least one of worker, classify, sentiment, rag, recommend, monitor" }}
{{- end }}
{{- toJson $roles }}
{{- end }}

{{/*
The image of a role: its own image block where set, else the chart's.
*/}}
{{- define "longview.image" -}}
{{- $own := .values.image | default dict }}
{{- $repository := $own.repository | default .root.Values.image.repository }}
{{- $tag := $own.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{- define "longview.imagePullPolicy" -}}
{{- $own := .values.image | default dict }}
{{- $own.pullPolicy | default .root.Values.image.pullPolicy }}
{{- end }}

{{/*
Seconds from the start of termination to SIGKILL: the preStop sleep (endpoints stop
routing to the pod), then LONGVIEW_DRAIN_SECONDS of drain after SIGTERM, then a margin.
*/}}
{{- define "longview.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- add $s.drainSeconds $s.preStopSleepSeconds $s.marginSeconds }}
{{- end }}

{{- define "longview.apiKeysSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-api-keys" (include "longview.fullname" .)) }}
{{- end }}

{{- define "longview.modelsClaimName" -}}
{{- .Values.models.volume.persistentVolumeClaim.existingClaim | default (printf "%s-models" (include "longview.fullname" .)) }}
{{- end }}

{{/*
Where task roles find model workers: workerEndpoints if set, else the chart's worker
Service when the worker role runs, else nothing (the role runs its model in process).
*/}}
{{- define "longview.workerEndpoints" -}}
{{- if .Values.workerEndpoints }}
{{- .Values.workerEndpoints }}
{{- else if and .Values.worker.enabled (not .Values.allInOne.enabled) }}
{{- $scheme := ternary "https" "http" .Values.tls.enabled }}
{{- $service := printf "%s-worker" (include "longview.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- printf "%s://%s:%d" $scheme $service (int .Values.ports.grpc) }}
{{- end }}
{{- end }}
