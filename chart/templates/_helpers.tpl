{{/*
Names and labels, as `helm create` makes them (object names are at most 63 characters).
*/}}
{{- define "node-auditor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "node-auditor.fullname" -}}
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

{{- define "node-auditor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "node-auditor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "node-auditor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "node-auditor.labels" -}}
helm.sh/chart: {{ include "node-auditor.chart" . }}
{{ include "node-auditor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: node-auditor
{{- end }}

{{- define "node-auditor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "node-auditor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "node-auditor.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The agent's `listen` setting: an IPv6 address goes in brackets.
*/}}
{{- define "node-auditor.listen" -}}
{{- if contains ":" .Values.listenAddress }}
{{- printf "[%s]:%d" .Values.listenAddress (int .Values.port) }}
{{- else }}
{{- printf "%s:%d" .Values.listenAddress (int .Values.port) }}
{{- end }}
{{- end }}

{{/*
The agent's configuration file: values.config, with the keys the chart owns set from their
own values (they must agree with the mounts and ports below).
*/}}
{{- define "node-auditor.agentConfig" -}}
{{- $config := deepCopy (default dict .Values.config) }}
{{- $_ := set $config "listen" (include "node-auditor.listen" .) }}
{{- $_ = set $config "stateDir" .Values.stateDir }}
{{- if .Values.remediation }}
{{- $_ = set $config "remediation" (deepCopy .Values.remediation) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
What the enabled checks and remediation actions need from the pod, as JSON (include ... |
fromJson). One table, so the securityContext, the mounts and the RBAC cannot disagree.

  root        uid 0 in the container (files and sockets only root may open; see README)
  caps        capabilities added after dropping ALL
  privileged  /dev/kmsg: the device cgroup of an unprivileged container refuses it
  appArmorUnconfined  the runtime's default AppArmor profile would refuse what is enabled:
              ptrace-read of processes outside it (/proc/<pid>/fd, fdinfo, ns/*: the checks
              that need SYS_PTRACE) and any D-Bus message (restart-kubelet, which asks systemd
              even to plan; kernel-networking in enforce, which loads the module through it)
  writeSysctls       enforce with inotify-limits or kernel-networking: /proc/sys, /etc/sysctl.d
  writeModulesLoad   enforce with kernel-networking: /etc/modules-load.d
  features    what the agent does with the cluster, as agent/kubernetes/permissions.ts names
              it (featuresOf): rbac.yaml grants a rule only while a feature that needs it is on
*/}}
{{- define "node-auditor.needs" -}}
{{- $config := default dict .Values.config }}
{{- $checks := dig "checks" dict $config }}
{{- /* check id -> [needs root, capabilities]; a check not listed needs neither */}}
{{- $table := dict
  "logs" (list true (list "DAC_READ_SEARCH"))
  "kubelet-cert" (list true (list))
  "container-runtime" (list true (list))
  "inotify" (list true (list "DAC_READ_SEARCH" "SYS_PTRACE"))
  "pause" (list true (list "DAC_READ_SEARCH" "SYS_PTRACE"))
  "zombies" (list true (list "DAC_READ_SEARCH" "SYS_PTRACE"))
  "kubelet-config" (list true (list "SYS_PTRACE"))
}}
{{- $root := false }}
{{- $caps := list }}
{{- range $id, $need := $table }}
{{- if dig $id "enabled" true $checks }}
{{- if index $need 0 }}{{ $root = true }}{{ end }}
{{- $caps = concat $caps (index $need 1) }}
{{- end }}
{{- end }}
{{- $kmsg := and (dig "logs" "enabled" true $checks) (dig "logs" "kmsg" "enabled" true $checks) }}
{{- $remediation := default dict .Values.remediation }}
{{- $actions := dig "actions" dict $remediation }}
{{- $enforce := eq (dig "mode" "dryRun" $remediation) "enforce" }}
{{- $inotifyLimits := dig "inotify-limits" "enabled" false $actions }}
{{- $kernelNetworking := dig "kernel-networking" "enabled" false $actions }}
{{- $restartKubelet := dig "restart-kubelet" "enabled" false $actions }}
{{- $anyAction := or $inotifyLimits $kernelNetworking $restartKubelet }}
{{- if $anyAction }}{{ $root = true }}{{ end }}
{{- $kubernetes := dig "kubernetes" dict $config }}
{{- $features := list "always" }}
{{- if dig "events" "enabled" true $kubernetes }}{{ $features = append $features "events" }}{{ end }}
{{- if dig "nodeConditions" "enabled" false $kubernetes }}{{ $features = append $features "nodeConditions" }}{{ end }}
{{- if dig "leaderElection" "enabled" true $kubernetes }}{{ $features = append $features "leaderElection" }}{{ end }}
{{- if dig "rbac" "enabled" true $checks }}{{ $features = append $features "rbacCheck" }}{{ end }}
{{- if $anyAction }}{{ $features = append $features "remediation" }}{{ end }}
{{- if and $enforce $anyAction }}{{ $features = append $features "remediationLock" }}{{ end }}
{{- $dbus := or $restartKubelet (and $enforce $kernelNetworking) }}
{{- dict
  "root" $root
  "caps" ($caps | uniq | sortAlpha)
  "privileged" $kmsg
  "appArmorUnconfined" (or (has "SYS_PTRACE" $caps) $dbus)
  "kmsg" $kmsg
  "writeSysctls" (and $enforce (or $inotifyLimits $kernelNetworking))
  "writeModulesLoad" (and $enforce $kernelNetworking)
  "features" $features
  | toJson }}
{{- end }}

{{/*
Host paths under /host, read-only unless a remediation action in enforce mode writes there.
One list for the volumes and the mounts. Which check reads what: README.md, "Host mounts".
*/}}
{{- define "node-auditor.hostMounts" -}}
{{- $needs := include "node-auditor.needs" . | fromJson }}
{{- $mounts := list
  (dict "name" "host-proc" "path" "/proc" "type" "Directory" "readOnly" true)
  (dict "name" "host-sys" "path" "/sys" "type" "Directory" "readOnly" true)
  (dict "name" "host-etc" "path" "/etc" "type" "Directory" "readOnly" true)
  (dict "name" "host-usr" "path" "/usr" "type" "Directory" "readOnly" true)
  (dict "name" "host-lib" "path" "/lib" "type" "Directory" "readOnly" true)
  (dict "name" "host-var-log" "path" "/var/log" "type" "Directory" "readOnly" true)
  (dict "name" "host-run" "path" "/run" "type" "Directory" "readOnly" true)
  (dict "name" "host-var-run" "path" "/var/run" "type" "Directory" "readOnly" true)
  (dict "name" "host-var-lib-kubelet" "path" "/var/lib/kubelet" "type" "Directory" "readOnly" true)
}}
{{- if $needs.kmsg }}
{{- $mounts = append $mounts (dict "name" "host-dev-kmsg" "path" "/dev/kmsg" "type" "CharDevice" "readOnly" true) }}
{{- end }}
{{- if $needs.writeSysctls }}
{{- /* directories, not files: the atomic write renames a temp file inside them */}}
{{- $mounts = append $mounts (dict "name" "host-proc-sys" "path" "/proc/sys" "type" "Directory" "readOnly" false) }}
{{- $mounts = append $mounts (dict "name" "host-etc-sysctl-d" "path" "/etc/sysctl.d" "type" "DirectoryOrCreate" "readOnly" false) }}
{{- end }}
{{- if $needs.writeModulesLoad }}
{{- $mounts = append $mounts (dict "name" "host-etc-modules-load-d" "path" "/etc/modules-load.d" "type" "DirectoryOrCreate" "readOnly" false) }}
{{- end }}
{{- range $index, $extra := .Values.extraHostMounts }}
{{- $mounts = append $mounts (dict "name" $extra.name "path" $extra.hostPath "type" (default "Directory" $extra.type) "readOnly" true) }}
{{- end }}
{{- toJson $mounts }}
{{- end }}

{{/*
The agent container's AppArmor profile: appArmorProfile, else Unconfined when the runtime's
default profile would refuse what the enabled checks and actions do (node-auditor.needs), else
none (the runtime's default). As JSON: {} for none.
*/}}
{{- define "node-auditor.appArmorProfile" -}}
{{- $needs := include "node-auditor.needs" . | fromJson }}
{{- $profile := deepCopy (default dict .Values.appArmorProfile) }}
{{- if and (empty $profile) $needs.appArmorUnconfined }}
{{- $profile = dict "type" "Unconfined" }}
{{- end }}
{{- toJson $profile }}
{{- end }}

{{/*
Where the AppArmor profile goes: securityContext.appArmorProfile from Kubernetes 1.30 (which
deprecates the annotation), the annotation before (an older API server drops the unknown field,
and a strict client refuses it). `helm template` renders for its own Kubernetes version unless
given --kube-version.
*/}}
{{- define "node-auditor.appArmorField" -}}
{{- if semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}
