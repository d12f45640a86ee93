{{/* Permissions on the served resources, from deploy/crds/README.md "Operator permissions". */}}
{{- define "sis.servedRules" -}}
- apiGroups: [sync.sekoia-intel.dev]
  resources: [sekoiaintelsyncs]
  verbs: [get, list, watch, patch]
- apiGroups: [sync.sekoia-intel.dev]
  resources: [sekoiaintelsyncs/status]
  verbs: [get, patch]
- apiGroups: [sync.sekoia-intel.dev]
  resources: [sekoiaintelsyncs/finalizers]
  verbs: [update]
# Server-side apply creates an object through PATCH, and the API server then also checks `create`
# (measured: without it the first apply of each runtime object is Forbidden).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Each runtime gets its own ServiceAccount, Role, RoleBinding and NetworkPolicy, created by
# server-side apply (patch + create), each read first (get) so that an object the resource does not
# own is never touched. RBAC lets the
# operator grant only what it holds itself (sekoiaintelsyncs get, status get/patch); RBAC cannot
# restrict these writes by label or content, the chart's ValidatingAdmissionPolicy does.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
{{/* The only access to Secrets: `get` by name (no list, no watch), where a namespace granted it. */}}
{{- define "sis.secretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
{{- define "sis.secretsClusterRole" -}}
{{- printf "%s-secrets" (include "sis.clusterScopedName" .) | trunc 63 | trimSuffix "-" -}}
{{- end }}
{{- define "sis.peeringRules" -}}
# kopf lists and watches every peering object but only ever writes its own.
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [list, watch]
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  resourceNames: [{{ .name }}]
  verbs: [get, patch]
{{- end }}
