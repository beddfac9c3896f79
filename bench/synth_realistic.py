"""The realistic shape of the synthetic repo (``bench/synth.py --shape realistic``).

What real apps carry rather than the basic shape's Deployment + Service + one small ConfigMap.
Per app (``base/app-NNNN/``, the same files in both layouts)::

    deployment.yaml     Deployment: 3 containers (app, proxy, metrics), each with probes and
                        resources; env from configMapKeyRef, envFrom, 3 ConfigMap volumes
                        (one with items), a ServiceAccount
    service.yaml        Service with 2 named ports
    serviceaccount.yaml ServiceAccount
    hpa.yaml            HorizontalPodAutoscaler (autoscaling/v2) on the Deployment
    pdb.yaml            PodDisruptionBudget (policy/v1)
    cronjob.yaml        CronJob (batch/v1) reading two of the ConfigMaps
    app.toml            200 lines      \\
    app.properties      60 lines        > ConfigMap app-NNNN-config (with 10 literals)
    nginx.conf          80 lines       \\
    conf.d/*.conf       3 files         > ConfigMap app-NNNN-nginx (a file and a folder)
                                          ConfigMap app-NNNN-env (6 literals)
    app.yaml            (ours) the three ConfigMap declarations
    kustomization.yaml  (Kustomize) the resources and three configMapGenerator entries

Per environment: the namespace; per app the 2 overridden literals of app-NNNN-config, an env
file (``envfiles/app-NNNN.env``, 8 lines) merged into app-NNNN-env, a strategic-merge patch of
the Deployment touching two containers (image, resources, a new env var first in the list)
and the replicas, and a patch of the HPA. 9 objects per app and environment.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench import synth

TOML_LINES = 200
PROPERTIES_LINES = 60
NGINX_LINES = 80
CONFD_FILES = ("cache.conf", "gzip.conf", "upstream.conf")
ENV_FILE_LINES = 8
KINDS_PER_APP = {
    "Deployment": 1,
    "Service": 1,
    "ServiceAccount": 1,
    "HorizontalPodAutoscaler": 1,
    "PodDisruptionBudget": 1,
    "CronJob": 1,
    "ConfigMap": 3,
}


def nginx_name(app: str) -> str:
    return f"{app}-nginx"


def env_config_name(app: str) -> str:
    return f"{app}-env"


def configmap_names(app: str) -> list[str]:
    return [synth.config_name(app), nginx_name(app), env_config_name(app)]


def env_cm_literals(app: str) -> dict[str, str]:
    return {f"FEATURE_{j}": f"{app}-feature-{j}-enabled" for j in range(6)}


def toml_text(app: str) -> str:
    """200 lines: sections of typed settings, as a service's config file looks."""
    lines: list[str] = [f"# {app} service configuration", f'name = "{app}"', ""]
    section = 0
    while len(lines) < TOML_LINES:
        lines.append(f"[section_{section:02d}]")
        for n in range(8):
            if len(lines) >= TOML_LINES:
                break
            kind = n % 4
            if kind == 0:
                lines.append(f'host_{n} = "{app}-backend-{section}.internal.example.com"')
            elif kind == 1:
                lines.append(f"port_{n} = {8000 + section * 10 + n}")
            elif kind == 2:
                lines.append(f"timeout_ms_{n} = {250 * (n + 1)}")
            else:
                lines.append(f'labels_{n} = ["{app}", "section-{section}", "tier-{n}"]')
        if len(lines) < TOML_LINES:
            lines.append("")
        section += 1
    return "\n".join(lines[:TOML_LINES]) + "\n"


def properties_text(app: str) -> str:
    return "".join(
        f"{app}.module{n // 10}.option{n % 10:02d} = setting {n:02d} for {app} with a longer descriptive value\n"
        for n in range(PROPERTIES_LINES)
    )


def nginx_text(app: str) -> str:
    lines = ["worker_processes auto;", "events { worker_connections 1024; }", "http {"]
    n = 0
    while len(lines) < NGINX_LINES - 1:
        lines.extend([
            f"    location /api/v{n}/ {{",
            f"        proxy_pass http://127.0.0.1:8080/v{n}/;",
            f"        proxy_read_timeout {30 + n}s;",
            f"        add_header X-Served-By {app};",
            "    }",
        ])
        n += 1
    lines = lines[: NGINX_LINES - 1] + ["}"]
    return "\n".join(lines) + "\n"


def confd_text(app: str, name: str) -> str:
    stem = name.split(".")[0]
    return "".join(f"# {stem} settings for {app}, line {n}\n{stem}_option_{n} on;\n" for n in range(6))


def env_file_text(app: str, env: str) -> str:
    return "".join(f"ENV_SETTING_{n}={env} setting {n} of {app}\n" for n in range(ENV_FILE_LINES))


def env_image(app: str, k: int) -> str:
    return f"registry.example.com/synthetic/{app}:1.{k}.0"


def _probe(port: str, path: str, indent: str) -> str:
    return (
        f"{indent}httpGet:\n{indent}  path: {path}\n{indent}  port: {port}\n"
        f"{indent}periodSeconds: 10\n{indent}timeoutSeconds: 2\n{indent}failureThreshold: 3\n"
    )


def deployment_yaml(app: str) -> str:
    cm, nginx, envcm = synth.config_name(app), nginx_name(app), env_config_name(app)
    p = "          "  # container fields
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app: {app}
    tier: backend
spec:
  replicas: 1
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app: {app}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {app}
        tier: backend
    spec:
      serviceAccountName: {app}
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: app
          image: registry.example.com/synthetic/{app}:1.0.0
          args: ["--config", "/etc/{app}/app.toml"]
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: KEY00
              valueFrom:
                configMapKeyRef:
                  name: {cm}
                  key: key00
            - name: KEY01
              valueFrom:
                configMapKeyRef:
                  name: {cm}
                  key: key01
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          envFrom:
            - configMapRef:
                name: {envcm}
          volumeMounts:
            - name: config
              mountPath: /etc/{app}
              readOnly: true
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: 500m
              memory: 256Mi
          livenessProbe:
{_probe("http", "/healthz", p + "  ")}          readinessProbe:
{_probe("http", "/ready", p + "  ")}          startupProbe:
{_probe("http", "/healthz", p + "  ")}        - name: proxy
          image: registry.example.com/library/nginx:1.27.2
          ports:
            - name: proxy
              containerPort: 8443
          volumeMounts:
            - name: nginx
              mountPath: /etc/nginx/nginx.conf
              subPath: nginx.conf
            - name: nginx-confd
              mountPath: /etc/nginx/conf.d
          resources:
            requests:
              cpu: 50m
              memory: 32Mi
            limits:
              cpu: 200m
              memory: 64Mi
          livenessProbe:
{_probe("proxy", "/nginx-health", p + "  ")}          readinessProbe:
{_probe("proxy", "/nginx-ready", p + "  ")}        - name: metrics
          image: registry.example.com/library/exporter:0.15.0
          args: ["--port=9102", "--target=http://127.0.0.1:8080/metrics"]
          ports:
            - name: metrics
              containerPort: 9102
          resources:
            requests:
              cpu: 10m
              memory: 16Mi
            limits:
              cpu: 50m
              memory: 32Mi
          readinessProbe:
{_probe("metrics", "/metrics", p + "  ")}      volumes:
        - name: config
          configMap:
            name: {cm}
            items:
              - key: app.toml
                path: app.toml
              - key: app.properties
                path: app.properties
        - name: nginx
          configMap:
            name: {nginx}
        - name: nginx-confd
          configMap:
            name: {nginx}
            items:
{"".join(f"              - key: {f}{chr(10)}                path: {f}{chr(10)}" for f in CONFD_FILES)}"""


def service_yaml(app: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  selector:
    app: {app}
  ports:
    - name: http
      port: 80
      targetPort: http
    - name: https
      port: 443
      targetPort: proxy
"""


def serviceaccount_yaml(app: str) -> str:
    return f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
  labels:
    app: {app}
automountServiceAccountToken: false
"""


def hpa_yaml(app: str) -> str:
    return f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {app}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {app}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 75
"""


def pdb_yaml(app: str) -> str:
    return f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {app}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: {app}
"""


def cronjob_yaml(app: str) -> str:
    return f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: {app}-cleanup
  labels:
    app: {app}
spec:
  schedule: "17 3 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        spec:
          restartPolicy: OnFailure
          serviceAccountName: {app}
          containers:
            - name: cleanup
              image: registry.example.com/synthetic/{app}-tools:1.0.0
              args: ["cleanup", "--older-than", "7d"]
              envFrom:
                - configMapRef:
                    name: {env_config_name(app)}
              volumeMounts:
                - name: config
                  mountPath: /etc/{app}
              resources:
                requests:
                  cpu: 10m
                  memory: 32Mi
          volumes:
            - name: config
              configMap:
                name: {synth.config_name(app)}
"""


MANIFESTS = {
    "deployment.yaml": deployment_yaml,
    "service.yaml": service_yaml,
    "serviceaccount.yaml": serviceaccount_yaml,
    "hpa.yaml": hpa_yaml,
    "pdb.yaml": pdb_yaml,
    "cronjob.yaml": cronjob_yaml,
}

DATA_FILES = {
    "app.toml": toml_text,
    "app.properties": properties_text,
    "nginx.conf": nginx_text,
}


def base_files(app: str) -> dict[str, str]:
    """Every file of the app folder both layouts share (relative path -> text)."""
    files = {name: make(app) for name, make in MANIFESTS.items()}
    files.update({name: make(app) for name, make in DATA_FILES.items()})
    files.update({f"conf.d/{name}": confd_text(app, name) for name in CONFD_FILES})
    return files


def ours_app_yaml(app: str) -> str:
    return (
        "configMaps:\n"
        f"  - name: {synth.config_name(app)}\n"
        "    literals:\n"
        f"{synth._map_lines(synth.base_literals(app), '      ')}"
        "    files: [app.toml, app.properties]\n"
        f"  - name: {nginx_name(app)}\n"
        "    files: [nginx.conf]\n"
        "    dirs: [conf.d]\n"
        f"  - name: {env_config_name(app)}\n"
        "    literals:\n"
        f"{synth._map_lines(env_cm_literals(app), '      ')}"
    )


def kustomize_base_yaml(app: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        + "".join(f"  - {name}\n" for name in MANIFESTS)
        + "configMapGenerator:\n"
        f"  - name: {synth.config_name(app)}\n"
        "    literals:\n"
        f"{synth._list_lines(synth.base_literals(app), '      ')}"
        "    files: [app.toml, app.properties]\n"
        f"  - name: {nginx_name(app)}\n"
        "    files:\n"
        "      - nginx.conf\n"
        + "".join(f"      - conf.d/{name}\n" for name in CONFD_FILES)
        + f"  - name: {env_config_name(app)}\n"
        "    literals:\n"
        f"{synth._list_lines(env_cm_literals(app), '      ')}"
    )


def env_file_path(app: str) -> str:
    return f"envfiles/{app}.env"


def _deployment_patch(app: str, env: str, k: int, indent: str) -> str:
    body = f"""kind: Deployment
metadata:
  name: {app}
spec:
  replicas: {synth.env_replicas(k)}
  template:
    spec:
      containers:
        - name: app
          image: {env_image(app, k)}
          env:
            - name: ENVIRONMENT
              value: {env}
          resources:
            limits:
              memory: 512Mi
        - name: proxy
          resources:
            requests:
              cpu: 100m
"""
    return "".join(indent + line + "\n" for line in body.splitlines())


def _hpa_patch(app: str, k: int, indent: str) -> str:
    body = f"""kind: HorizontalPodAutoscaler
metadata:
  name: {app}
spec:
  minReplicas: {synth.env_replicas(k)}
  maxReplicas: {4 * synth.env_replicas(k)}
"""
    return "".join(indent + line + "\n" for line in body.splitlines())


def _first_item(block: str, indent: str) -> str:
    """Turn an indented mapping into the first item of a list (``- `` on its first line)."""
    return indent[:-2] + "- " + block[len(indent):]


def ours_env_yaml(env: str, k: int, apps: Iterable[str]) -> str:
    apps = list(apps)
    parts = [f"namespace: {env}\n", "configMaps:\n"]
    for app in apps:
        parts.append(
            f"  {synth.config_name(app)}:\n    literals:\n{synth._map_lines(synth.env_literals(app, env), '      ')}"
            f"  {env_config_name(app)}:\n    envs: [{env_file_path(app)}]\n"
        )
    parts.append("patches:\n")
    for app in apps:
        parts.append(_first_item(_deployment_patch(app, env, k, "    "), "    "))
        parts.append(_first_item(_hpa_patch(app, k, "    "), "    "))
    return "".join(parts)


def kustomize_overlay_yaml(env: str, k: int, apps: Iterable[str]) -> str:
    apps = list(apps)
    parts = [
        "apiVersion: kustomize.config.k8s.io/v1beta1\n",
        "kind: Kustomization\n",
        f"namespace: {env}\n",
        "resources:\n",
    ]
    parts.extend(f"  - ../../base/{app}\n" for app in apps)
    parts.append("configMapGenerator:\n")
    for app in apps:
        parts.append(
            f"  - name: {synth.config_name(app)}\n    behavior: merge\n    literals:\n"
            f"{synth._list_lines(synth.env_literals(app, env), '      ')}"
            f"  - name: {env_config_name(app)}\n    behavior: merge\n    envs: [{env_file_path(app)}]\n"
        )
    parts.append("patches:\n")
    for app in apps:
        for patch in (_deployment_patch(app, env, k, "      "), _hpa_patch(app, k, "      ")):
            group = "apps/v1" if patch.lstrip().startswith("kind: Deployment") else "autoscaling/v2"
            parts.append(f"  - patch: |-\n      apiVersion: {group}\n{patch}")
    return "".join(parts)


def env_files(env: str, apps: Iterable[str]) -> dict[str, str]:
    """The environment folder's data files, the same in both layouts."""
    return {env_file_path(app): env_file_text(app, env) for app in apps}
