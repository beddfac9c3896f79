{{- define "status-page.labels" -}}
app: {{ .Release.Name }}
app.kubernetes.io/part-of: exchange
{{- end -}}
