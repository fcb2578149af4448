{{/* The generated catalogue: topics, principals with their ACLs, and each service's subscriptions. */}}
{{- define "lindungi.catalogue" -}}
{{- .Files.Get "catalogue.yaml" -}}
{{- end -}}

{{- define "lindungi.fullname" -}}
{{- if contains "lindungi" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-lindungi" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lindungi.labels" -}}
app.kubernetes.io/name: lindungi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (a service, mongodb, the backup job): (dict "root" $ "component" name). */}}
{{- define "lindungi.selector" -}}
app.kubernetes.io/name: lindungi
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lindungi.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The in-cluster SCRAM listener of the Strimzi cluster (bootstrap service, port of the `scram` listener). */}}
{{- define "lindungi.bootstrap" -}}
{{- printf "%s-kafka-bootstrap:9092" .Values.kafka.name -}}
{{- end -}}

{{/* Secret holding a Kafka principal's SCRAM username and password: (dict "root" $ "user" name). */}}
{{- define "lindungi.kafkaSecret" -}}
{{- printf "%s-kafka-%s" (include "lindungi.fullname" .root) .user -}}
{{- end -}}

{{/* Secret holding a MongoDB user's password: (dict "root" $ "user" name). */}}
{{- define "lindungi.mongoPasswordSecret" -}}
{{- printf "%s-mongodb-%s-password" (include "lindungi.fullname" .root) .user -}}
{{- end -}}

{{/* Secret the MongoDB operator writes with a user's connection string: (dict "root" $ "user" name). */}}
{{- define "lindungi.mongoConnectionSecret" -}}
{{- printf "%s-mongodb-%s" (include "lindungi.fullname" .root) .user -}}
{{- end -}}

{{/* A password that survives upgrades: the existing Secret's value when there is one, else a new random one.
     (dict "root" $ "secret" name). `helm template` sees no cluster, so it always draws a new one. */}}
{{- define "lindungi.password" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- index $existing.data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicyPeer selecting the pods of the three services. */}}
{{- define "lindungi.servicePeers" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: lindungi
      app.kubernetes.io/instance: {{ .Release.Name }}
    matchExpressions:
      - key: app.kubernetes.io/component
        operator: In
        values: {{ (include "lindungi.catalogue" . | fromYaml).services | keys | sortAlpha | toJson }}
{{- end -}}

{{/* A service's settings that are not secret (the ConfigMap's data): (dict "root" $ "name" name "service" entry).
     Names as in docs/operations.md and services/<name>/settings.py. */}}
{{- define "lindungi.serviceConfig" -}}
{{- $root := .root }}
{{- $values := index $root.Values.services .name }}
{{- $prefix := .service.envPrefix }}
{{- $config := dict
      "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS" (include "lindungi.bootstrap" $root)
      "LINDUNGI_KAFKA_SECURITY_PROTOCOL" "SASL_PLAINTEXT"
      "LINDUNGI_KAFKA_SASL_MECHANISM" "SCRAM-SHA-512"
      "LINDUNGI_LOG_LEVEL" $root.Values.logLevel
      "LINDUNGI_LOG_FORMAT" "json"
      (printf "%sHTTP_HOST" $prefix) "0.0.0.0"
      (printf "%sHTTP_PORT" $prefix) (toString .service.port)
      (printf "%sCREATE_TOPICS" $prefix) "false" }}
{{- if eq .name "registration" }}
{{- $_ := set $config "REGISTRATION_PARTNER_OUTCOME_TOPICS" "true" }}
{{- end }}
{{- if eq .name "notification" }}
{{- $_ := set $config "NOTIFICATION_SMTP_HOST" $values.smtp.host }}
{{- $_ := set $config "NOTIFICATION_SMTP_PORT" (toString $values.smtp.port) }}
{{- $_ := set $config "NOTIFICATION_SMTP_SECURITY" $values.smtp.security }}
{{- $_ := set $config "NOTIFICATION_MAIL_FROM" $values.mailFrom }}
{{- with $values.smtp.username }}{{ $_ := set $config "NOTIFICATION_SMTP_USERNAME" . }}{{ end }}
{{- with $values.smsGatewayUrl }}{{ $_ := set $config "NOTIFICATION_SMS_GATEWAY_URL" . }}{{ end }}
{{- end }}
{{- range $key, $value := $values.env }}
{{- $_ := set $config $key (toString $value) }}
{{- end }}
{{- toYaml $config }}
{{- end -}}
