{{/* Names are truncated to 63 characters: Kubernetes label values and Service names allow no more. */}}
{{- define "sis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "sis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sekoia-intel-sync
{{- end -}}

{{- define "sis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* One image for the operator and the runtimes; a digest pins it more strongly than a tag. */}}
{{- define "sis.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "sis.runtimeImage" -}}
{{- default (include "sis.image" .) .Values.runtimeImage -}}
{{- end -}}

{{- define "sis.claimsNamespace" -}}
{{- default .Release.Namespace .Values.claimsNamespace -}}
{{- end -}}

{{/* The peering object is cluster-scoped (or shared by every release watching a namespace), so its
default name carries the release namespace like the other cluster-scoped objects. */}}
{{- define "sis.peeringName" -}}
{{- default (include "sis.clusterScopedName" .) .Values.peering.name -}}
{{- end -}}

{{- define "sis.webhookServiceName" -}}
{{- printf "%s-webhook" (include "sis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sis.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "sis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Cluster-scoped objects (ClusterRole, webhook configuration) carry the release namespace in
their name: two releases of the same name in different namespaces must not collide. */}}
{{- define "sis.clusterScopedName" -}}
{{- printf "%s-%s" .Release.Namespace (include "sis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}


{{/*
The operator's command line, also read by the tests to start the operator exactly as the chart does.
Ports stay flags (not env) so that `kubectl get deploy -o yaml` shows the whole configuration.
*/}}
{{- define "sis.args" -}}
- --claims-namespace={{ include "sis.claimsNamespace" . }}
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- {{ printf "--namespace=%v" . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- if .Values.peering.enabled }}
- --peering={{ include "sis.peeringName" . }}
{{- else }}
- --standalone
{{- end }}
- --resync-interval={{ .Values.operator.resyncInterval }}
- --max-workers={{ .Values.operator.maxWorkers }}
{{- with .Values.sekoiaBudget }}
- --sekoia-budget={{ .requestsPerSecond }}
- --sekoia-budget-floor={{ .floor }}
- --sekoia-budget-headroom={{ .headroom }}
{{- range $host, $rate := .hosts }}
- {{ printf "--sekoia-budget-host=%v=%v" $host $rate | quote }}
{{- end }}
{{- end }}
- --liveness-port={{ .Values.livenessPort }}
- --metrics-port={{ .Values.metrics.port }}
{{- if eq .Values.operator.logLevel "debug" }}
- --verbose
{{- else if eq .Values.operator.logLevel "warning" }}
- --quiet
{{- end }}
{{- if .Values.webhook.enabled }}
- --webhook
- --webhook-port={{ .Values.webhook.port }}
{{- if eq .Values.webhook.certificate.source "operator" }}
- --webhook-cert-secret={{ include "sis.webhookSecretName" . }}
- --webhook-service={{ include "sis.webhookServiceName" . }}
- --webhook-inject-ca={{ include "sis.clusterScopedName" . }}
{{- else }}
- --webhook-certfile=/etc/sekoia-intel-sync/webhook/tls.crt
- --webhook-keyfile=/etc/sekoia-intel-sync/webhook/tls.key
{{- end }}
{{- if .Values.webhook.clientAuth.enabled }}
- --webhook-client-cafile=/etc/sekoia-intel-sync/webhook-client/ca.crt
{{- range .Values.webhook.clientAuth.allowedNames }}
- --webhook-client-name={{ . }}
{{- end }}
{{- else }}
- --webhook-insecure-no-client-auth
{{- end }}
{{- end }}
{{- with .Values.policy }}
{{- range .runtimeImages }}
- {{ printf "--allow-runtime-image=%v" . | quote }}
{{- end }}
{{- range .sekoiaUrls }}
- {{ printf "--allow-sekoia-url=%v" . | quote }}
{{- end }}
{{- range .openctiSchemes }}
- {{ printf "--allow-opencti-scheme=%v" . | quote }}
{{- end }}
{{- if .allowLoopback }}
- --allow-loopback
{{- end }}
{{- range .podAnnotationKeys }}
- {{ printf "--allow-pod-annotation=%v" . | quote }}
{{- end }}
{{- range .tolerationKeys }}
- {{ printf "--allow-toleration-key=%v" . | quote }}
{{- end }}
{{- range .priorityClassNames }}
- {{ printf "--allow-priority-class=%v" . | quote }}
{{- end }}
{{- range .nodeSelectorKeys }}
- {{ printf "--allow-node-selector-key=%v" . | quote }}
{{- end }}
{{- if .allowAffinity }}
- --allow-affinity
{{- end }}
{{- range .imagePullSecretNames }}
- {{ printf "--allow-image-pull-secret=%v" . | quote }}
{{- end }}
{{- range $name, $max := .maxRuntimeResources }}
- {{ printf "--max-runtime-resource=%v=%v" $name $max | quote }}
{{- end }}
{{- end }}
- {{ printf "--runtime-pod-defaults=%s" (include "sis.runtimePodDefaults" .) | quote }}
{{- with .Values.runtimeNetworkPolicy }}
{{- if .enabled }}
{{- range .monitoringNamespaces }}
- {{ printf "--monitoring-namespace=%v" . | quote }}
{{- end }}
{{- range .apiServerPorts }}
- {{ printf "--api-server-port=%v" . | quote }}
{{- end }}
{{- range .egressCIDRs }}
- {{ printf "--egress-cidr=%v" . | quote }}
{{- end }}
{{- else }}
- --no-network-policy
{{- end }}
{{- end }}
{{- range .Values.operator.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "sis.webhookClientCAName" -}}
{{- if .Values.webhook.clientAuth.caBundle -}}
{{- printf "%s-webhook-client-ca" (include "sis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
kube-root-ca.crt
{{- end -}}
{{- end -}}


{{/* runtimeDefaults as the operator's --runtime-pod-defaults JSON (empty fields left out). */}}
{{- define "sis.runtimePodDefaults" -}}
{{- $out := dict -}}
{{- range $key, $value := .Values.runtimeDefaults -}}
{{- if $value -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
