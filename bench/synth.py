"""Write a synthetic repo of N apps and M environments, in our input format and as Kustomize.

    python bench/synth.py --apps 1000 --envs 1 --out bench/work/synth

writes two sibling folders:

``ours/`` (our input format, the README's "Input format")::

    base/app-NNNN/app.yaml            one ConfigMap `app-NNNN-config`: 10 literals + app.properties
    base/app-NNNN/app.properties      30 lines
    base/app-NNNN/deployment.yaml     Deployment `app-NNNN` (env from, and a volume of, the ConfigMap)
    base/app-NNNN/service.yaml        Service `app-NNNN`
    environments/env-K/env.yaml       namespace env-K; per app: 2 ConfigMap keys overridden through
                                      `configMaps:` and the replicas through a `patches:` entry

``kustomize/`` (the same objects, the Kustomize way)::

    base/app-NNNN/kustomization.yaml  resources + configMapGenerator (the same literals + files)
    base/app-NNNN/{app.properties,deployment.yaml,service.yaml}   byte-identical copies
    overlays/env-K/kustomization.yaml namespace env-K; resources: every app base; per app a
                                      configMapGenerator entry with `behavior: merge` (the same 2
                                      keys) and a strategic-merge patch of the replicas

Both produce, per environment and app, a Deployment, a Service and a ConfigMap with identical
content; only the ConfigMap name suffix (hash format), `immutable: true` and whatever metadata
each tool adds differ. :func:`semantic_view` reduces either output to what must agree.
Everything is deterministic: the same arguments write the same bytes.

``--shape realistic`` writes what real apps carry instead (bench/synth_realistic.py: a
Deployment with three containers, probes and resources, a Service, ServiceAccount, HPA, PDB,
CronJob and three ConfigMaps from literals, a 200-line TOML, properties, an nginx config and a
folder; env files and patches of containers in the environments); :func:`full_view` compares
those outputs object by object.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LITERALS_PER_APP = 10
PROPERTIES_LINES = 30
OVERRIDDEN_KEYS = ("key00", "key01")
SHAPES = ("basic", "realistic")


@dataclass(frozen=True)
class SynthRepo:
    """Where :func:`write_repos` put things."""

    root: Path
    ours: Path  # our repo: base/, environments/
    kustomize: Path  # Kustomize layout: base/, overlays/
    apps: list[str]
    envs: list[str]
    shape: str = "basic"

    def overlay(self, env: str) -> Path:
        return self.kustomize / "overlays" / env


def app_name(i: int) -> str:
    return f"app-{i:04d}"


def env_name(k: int) -> str:
    return f"env-{k}"


def config_name(app: str) -> str:
    return f"{app}-config"


def base_literals(app: str) -> dict[str, str]:
    # Values always contain letters and dashes, so YAML reads every one of them as a string.
    return {f"key{j:02d}": f"{app}-value-{j:02d}" for j in range(LITERALS_PER_APP)}


def env_literals(app: str, env: str) -> dict[str, str]:
    return {key: f"{env}-{app}-{key}-override" for key in OVERRIDDEN_KEYS}


def env_replicas(k: int) -> int:
    return 2 + k % 4


def properties_text(app: str) -> str:
    return "".join(
        f"{app}.setting.{n:02d} = value {n:02d} of {app}, with some words to give it weight\n"
        for n in range(PROPERTIES_LINES)
    )


def deployment_yaml(app: str) -> str:
    cm = config_name(app)
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
        - name: app
          image: registry.example.com/synthetic/{app}:1.0.0
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: KEY00
              valueFrom:
                configMapKeyRef:
                  name: {cm}
                  key: key00
          volumeMounts:
            - name: config
              mountPath: /etc/{app}
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
      volumes:
        - name: config
          configMap:
            name: {cm}
"""


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
"""


def _map_lines(values: Mapping[str, str], indent: str) -> str:
    return "".join(f'{indent}{k}: "{v}"\n' for k, v in values.items())


def _list_lines(values: Mapping[str, str], indent: str) -> str:
    return "".join(f'{indent}- "{k}={v}"\n' for k, v in values.items())


def ours_app_yaml(app: str) -> str:
    return (
        "configMaps:\n"
        f"  - name: {config_name(app)}\n"
        "    literals:\n"
        f"{_map_lines(base_literals(app), '      ')}"
        "    files:\n"
        "      - app.properties\n"
    )


def ours_env_yaml(env: str, k: int, apps: Iterable[str]) -> str:
    apps = list(apps)
    parts = [f"namespace: {env}\n", "configMaps:\n"]
    for app in apps:
        parts.append(f"  {config_name(app)}:\n    literals:\n{_map_lines(env_literals(app, env), '      ')}")
    parts.append("patches:\n")
    replicas = env_replicas(k)
    for app in apps:
        parts.append(f"  - kind: Deployment\n    metadata:\n      name: {app}\n    spec:\n      replicas: {replicas}\n")
    return "".join(parts)


def kustomize_base_yaml(app: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        "  - deployment.yaml\n"
        "  - service.yaml\n"
        "configMapGenerator:\n"
        f"  - name: {config_name(app)}\n"
        "    literals:\n"
        f"{_list_lines(base_literals(app), '      ')}"
        "    files:\n"
        "      - app.properties\n"
    )


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
            f"  - name: {config_name(app)}\n    behavior: merge\n    literals:\n"
            f"{_list_lines(env_literals(app, env), '      ')}"
        )
    parts.append("patches:\n")
    replicas = env_replicas(k)
    for app in apps:
        parts.append(
            "  - patch: |-\n"
            "      apiVersion: apps/v1\n"
            "      kind: Deployment\n"
            "      metadata:\n"
            f"        name: {app}\n"
            "      spec:\n"
            f"        replicas: {replicas}\n"
        )
    return "".join(parts)


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def app_yaml(app: str, shape: str = "basic") -> str:
    """The app's app.yaml in our format, for either shape."""
    if shape == "realistic":
        from bench import synth_realistic

        return synth_realistic.ours_app_yaml(app)
    return ours_app_yaml(app)


def _write_files(folder: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, text)


def _write_realistic(ours: Path, kust: Path, app_names: list[str], env_names: list[str]) -> None:
    from bench import synth_realistic as real

    for app in app_names:
        shared = real.base_files(app)
        _write_files(ours / "base" / app, {**shared, "app.yaml": real.ours_app_yaml(app)})
        _write_files(kust / "base" / app, {**shared, "kustomization.yaml": real.kustomize_base_yaml(app)})
    for k, env in enumerate(env_names):
        data = real.env_files(env, app_names)
        _write_files(ours / "environments" / env, {**data, "env.yaml": real.ours_env_yaml(env, k, app_names)})
        _write_files(kust / "overlays" / env, {**data, "kustomization.yaml": real.kustomize_overlay_yaml(env, k, app_names)})


def write_repos(root: Path, apps: int, envs: int, shape: str = "basic") -> SynthRepo:
    """Write ``root/ours`` and ``root/kustomize`` (both replaced if they exist)."""
    if apps < 1 or envs < 1:
        raise ValueError("need at least one app and one environment")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    root = root.resolve()
    ours = root / "ours"
    kust = root / "kustomize"
    for folder in (ours, kust):
        if folder.exists():
            shutil.rmtree(folder)
    app_names = [app_name(i) for i in range(apps)]
    env_names = [env_name(k) for k in range(envs)]
    if shape == "realistic":
        _write_realistic(ours, kust, app_names, env_names)
        return SynthRepo(root=root, ours=ours, kustomize=kust, apps=app_names, envs=env_names, shape=shape)
    for app in app_names:
        props = properties_text(app)
        deployment = deployment_yaml(app)
        service = service_yaml(app)
        ob = ours / "base" / app
        kb = kust / "base" / app
        ob.mkdir(parents=True)
        kb.mkdir(parents=True)
        for folder in (ob, kb):
            _write(folder / "app.properties", props)
            _write(folder / "deployment.yaml", deployment)
            _write(folder / "service.yaml", service)
        _write(ob / "app.yaml", ours_app_yaml(app))
        _write(kb / "kustomization.yaml", kustomize_base_yaml(app))
    for k, env in enumerate(env_names):
        oe = ours / "environments" / env
        ke = kust / "overlays" / env
        oe.mkdir(parents=True)
        ke.mkdir(parents=True)
        _write(oe / "env.yaml", ours_env_yaml(env, k, app_names))
        _write(ke / "kustomization.yaml", kustomize_overlay_yaml(env, k, app_names))
    return SynthRepo(root=root, ours=ours, kustomize=kust, apps=app_names, envs=env_names)


# --- comparing the two outputs ---------------------------------------------------------------

_SUFFIX = re.compile(r"^(?P<base>.+)-[0-9a-z]{5,64}$")


def _strip_suffix(name: str, declared: set[str]) -> str:
    if name in declared:
        return name
    match = _SUFFIX.match(name)
    if match and match.group("base") in declared:
        return match.group("base")
    return name


def semantic_view(objects: Iterable[Mapping[str, Any]], declared_configmaps: set[str]) -> dict[tuple[str, str, str], Any]:
    """Reduce rendered objects to what both tools must agree on, keyed by (kind, namespace, name).

    ConfigMap names lose their hash suffix (whatever its format); a ConfigMap keeps its data;
    a Deployment its replicas, image, and the (unsuffixed) ConfigMaps its pod spec refers to;
    a Service its selector and ports. Labels and annotations a tool adds are ignored.
    """
    view: dict[tuple[str, str, str], Any] = {}
    for obj in objects:
        kind = str(obj.get("kind"))
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        name = str(meta.get("name"))
        if kind == "ConfigMap":
            name = _strip_suffix(name, declared_configmaps)
            value: Any = {"data": dict(obj.get("data") or {}), "binaryData": dict(obj.get("binaryData") or {})}
        elif kind == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            refs = sorted(
                {_strip_suffix(v["configMap"]["name"], declared_configmaps) for v in pod.get("volumes", []) if "configMap" in v}
                | {
                    _strip_suffix(e["valueFrom"]["configMapKeyRef"]["name"], declared_configmaps)
                    for c in pod.get("containers", [])
                    for e in c.get("env", [])
                    if "configMapKeyRef" in (e.get("valueFrom") or {})
                }
            )
            value = {
                "replicas": obj["spec"].get("replicas"),
                "images": [c.get("image") for c in pod.get("containers", [])],
                "configMaps": refs,
            }
        elif kind == "Service":
            value = {"selector": obj["spec"].get("selector"), "ports": obj["spec"].get("ports")}
        else:
            value = None
        view[(kind, namespace, name)] = value
    return view


def _normalise(value: Any, declared: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, declared) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, declared) for v in value]
    if isinstance(value, str):
        return _strip_suffix(value, declared)
    return value


def full_view(objects: Iterable[Mapping[str, Any]], declared_configmaps: set[str]) -> dict[tuple[str, str, str], Any]:
    """Every object whole, keyed by (kind, namespace, name), with what only one tool does removed.

    Any string naming a declared ConfigMap with a hash suffix loses the suffix (the name itself
    and every reference to it); a ConfigMap loses ``immutable`` and our ``gitops-gen.io/``
    annotations (the provenance of its declared name). Everything else must be equal: the
    patched containers and their lists' order, probes, resources, the data of every ConfigMap.
    """
    view: dict[tuple[str, str, str], Any] = {}
    for obj in objects:
        norm = _normalise(dict(obj), declared_configmaps)
        meta = norm.setdefault("metadata", {})
        notes = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("gitops-gen.io/")}
        if notes:
            meta["annotations"] = notes
        else:
            meta.pop("annotations", None)
        if norm.get("kind") == "ConfigMap":
            norm.pop("immutable", None)
        view[(str(norm.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))] = norm
    return view


def declared_configmaps(repo: SynthRepo) -> set[str]:
    if repo.shape == "realistic":
        from bench import synth_realistic

        return {name for app in repo.apps for name in synth_realistic.configmap_names(app)}
    return {config_name(app) for app in repo.apps}


def expected_counts(repo: SynthRepo) -> dict[str, int]:
    """Objects per environment, by kind."""
    n = len(repo.apps)
    if repo.shape == "realistic":
        from bench import synth_realistic

        return {kind: count * n for kind, count in synth_realistic.KINDS_PER_APP.items()}
    return {"Deployment": n, "Service": n, "ConfigMap": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--apps", type=int, required=True, help="number of apps (N)")
    parser.add_argument("--envs", type=int, default=1, help="number of environments (M)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write ours/ and kustomize/ into")
    parser.add_argument("--shape", choices=SHAPES, default="basic",
                        help="basic (3 small objects per app, the default) or realistic (9 objects, large files)")
    args = parser.parse_args(argv)
    repo = write_repos(args.out, args.apps, args.envs, args.shape)
    files = sum(len(f) for _, _, f in os.walk(repo.root))
    print(f"wrote {repo.ours} and {repo.kustomize} ({len(repo.apps)} apps, {len(repo.envs)} envs, {files} files)")
    return 0


if __name__ == "__main__":
    # run as a script: make `bench.synth_realistic` importable (bench/run.py does the same)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
