{{/*
The webhook's CA and serving certificate when webhook.certificate.source is "helm".

genCA/genSignedCert return new random keys on every call, yet the Secret, the webhook
configuration's caBundle and the Deployment's checksum must agree. So the result is computed once
per render and cached on the root context (shared by every template of this chart), and an
existing Secret is reused (lookup), so that `helm upgrade` does not rotate the certificate and
restart the operator for nothing. `helm template` has no cluster: it always generates.
Returns YAML with keys ca.crt, tls.crt, tls.key (base64-encoded, as in a Secret's data).
*/}}
{{- define "sis.webhookTLS" -}}
{{- if not (hasKey . "sisWebhookTLS") -}}
{{- $svc := include "sis.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $existing := lookup "v1" "Secret" $ns (include "sis.webhookSecretName" .) -}}
{{- $data := dict -}}
{{- if and $existing $existing.data (hasKey $existing.data "ca.crt") (hasKey $existing.data "tls.crt") (hasKey $existing.data "tls.key") -}}
{{- $data = dict "ca.crt" (index $existing.data "ca.crt") "tls.crt" (index $existing.data "tls.crt") "tls.key" (index $existing.data "tls.key") -}}
{{- else -}}
{{- $days := int .Values.webhook.certificate.validityDays -}}
{{- $ca := genCA (printf "%s-webhook-ca" (include "sis.fullname" .)) $days -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns $days $ca -}}
{{- $data = dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set . "sisWebhookTLS" $data -}}
{{- end -}}
{{- toYaml (get . "sisWebhookTLS") -}}
{{- end -}}
