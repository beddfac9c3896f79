"""The chart row of the benchmark: N chart-based apps x M environments (default 50 x 3).

    python bench/run.py --charts 50 --envs 3 --repeat 3     (or python bench/charts.py ...)

Writes a repo where every app is a small Helm chart in the repo (a ConfigMap from values, a
Deployment that mounts it with a `checksum/config` annotation, a Service, a ServiceAccount),
with app values in app.yaml and per-environment values in env.yaml, and times, interleaved:

    ours        python -m generator render --repo DIR   cold (no memo, no out/): every chart through Helm
    helm        helm template, once per app and environment, one after the other (what a script
                or a CI job does), values passed the same way; Helm's own cost: the floor here
    helm+kust   the helm calls above, then `kubectl kustomize` per environment over their output
                (the usual "helm template | kustomize" pipeline doing the same job)

and ends with one line:

    ratio_vs_helm=<ours/helm> ratio_vs_helm_kustomize=<ours/(helm+kust)>

(medians of wall time.) Our render runs the Helm processes of an environment concurrently and
environments in parallel, so on a machine with several cores it can be below the sequential
Helm calls; CPU times are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import Sample, run_measured  # noqa: E402
from tests.helm import helm_path  # noqa: E402
from tests.kubectl import find_kubectl  # noqa: E402

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: {app}\nversion: 1.0.0\n",
    "values.yaml": "replicas: 1\nimage: nginx:1.27\nsettings:\n  log_level: info\n  workers: \"4\"\n",
    "templates/_helpers.tpl": '{{- define "labels" -}}\napp: {{ .Release.Name }}\n{{- end -}}\n',
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "  labels:\n    {{- include \"labels\" . | nindent 4 }}\ndata:\n"
        "  {{- toYaml .Values.settings | nindent 2 }}\n"
        "  app.conf: |\n    name = {{ .Release.Name }}\n    namespace = {{ .Release.Namespace }}\n"
    ),
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "  labels:\n    {{- include \"labels\" . | nindent 4 }}\nspec:\n  replicas: {{ .Values.replicas }}\n"
        "  selector:\n    matchLabels:\n      {{- include \"labels\" . | nindent 6 }}\n  template:\n"
        "    metadata:\n      labels:\n        {{- include \"labels\" . | nindent 8 }}\n"
        "      annotations:\n        checksum/config: {{ include (print $.Template.BasePath \"/configmap.yaml\") . | sha256sum }}\n"
        "    spec:\n      serviceAccountName: {{ .Release.Name }}\n      containers:\n"
        "        - name: app\n          image: {{ .Values.image }}\n          envFrom:\n"
        "            - configMapRef: {name: {{ .Release.Name }}-config}\n"
    ),
    "templates/service.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  selector:\n    {{- include \"labels\" . | nindent 4 }}\n  ports:\n    - {name: http, port: 80}\n"
    ),
    "templates/serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}\n",
}


def app_name(i: int) -> str:
    return f"chart-app-{i:03d}"


def env_name(j: int) -> str:
    return f"env{j}"


def write_repo(root: Path, apps: int, envs: int) -> None:
    for i in range(apps):
        app = app_name(i)
        folder = root / "base" / app
        for rel, text in CHART.items():
            path = folder / "chart" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{app}", app), encoding="utf-8")
        (folder / "app.yaml").write_text(
            f"chart:\n  path: chart\n  values:\n    settings: {{log_level: warn, owner: team-{i % 7}}}\n",
            encoding="utf-8")
    for j in range(envs):
        env = env_name(j)
        lines = [f"namespace: {env}", "charts:"]
        lines += [f"  {app_name(i)}:\n    values: {{replicas: {j + 1}, settings: {{workers: \"{j + 2}\"}}}}"
                  for i in range(apps)]
        (root / "environments" / env).mkdir(parents=True, exist_ok=True)
        (root / "environments" / env / "env.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def values_files(root: Path, apps: int, envs: int) -> dict[tuple[int, int], Path]:
    """The merged values per app and environment as a file, for the plain Helm runs."""
    out = {}
    folder = root / "helm-values"
    folder.mkdir(exist_ok=True)
    for i in range(apps):
        for j in range(envs):
            merged = {"settings": {"log_level": "warn", "owner": f"team-{i % 7}", "workers": str(j + 2)}, "replicas": j + 1}
            path = folder / f"{app_name(i)}-{env_name(j)}.json"
            path.write_text(json.dumps(merged), encoding="utf-8")
            out[(i, j)] = path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chart row: our render vs helm template (+ kubectl kustomize).")
    parser.add_argument("--charts", type=int, default=50, help="chart-based apps (default 50)")
    parser.add_argument("--envs", type=int, default=3, help="environments (default 3)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work-charts")
    args = parser.parse_args(argv)
    work: Path = args.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    repo = work / "repo"
    write_repo(repo, args.charts, args.envs)
    helm = helm_path()
    kubectl = find_kubectl()
    env = {**os.environ, "GITOPS_GEN_CACHE_DIR": str(work / "memo"), "GITOPS_GEN_HELM": str(helm),
           "PYTHONPATH": str(ROOT)}
    vals = values_files(work, args.charts, args.envs)
    logs = work / "logs"
    logs.mkdir()
    results: dict[str, list[Sample]] = {"ours": [], "helm": [], "kustomize": []}

    def timed(argv: list[str], name: str, stdout: Path | None = None) -> Sample:
        out = stdout or logs / f"{name}.out"
        code, sample = run_measured(argv, cwd=work, env=env, stdout=out, stderr=logs / f"{name}.err")
        if code != 0:
            raise SystemExit(f"{name}: {' '.join(argv)} exited {code}: {(logs / f'{name}.err').read_text()[-2000:]}")
        return sample

    def ours() -> Sample:
        shutil.rmtree(work / "memo", ignore_errors=True)
        shutil.rmtree(repo / "out", ignore_errors=True)
        return timed([sys.executable, "-m", "generator", "render", "--repo", str(repo)], "ours")

    def helm_all() -> Sample:
        parts = []
        for j in range(args.envs):
            target = work / "helm-out" / env_name(j)
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for i in range(args.charts):
                parts.append(timed(
                    [str(helm), "template", app_name(i), str(repo / "base" / app_name(i) / "chart"),
                     "--namespace", env_name(j), "--kube-version", "v1.35.0", "--skip-tests", "-f", str(vals[(i, j)])],
                    "helm", target / f"{app_name(i)}.yaml"))
            files = sorted(p.name for p in target.glob("*.yaml"))
            (target / "kustomization.yaml").write_text(
                f"namespace: {env_name(j)}\nresources:\n" + "".join(f"  - {f}\n" for f in files), encoding="utf-8")
        return Sample(sum(p.wall for p in parts), sum(p.cpu for p in parts), max(p.maxrss_kb for p in parts), 0)

    def kustomize_all() -> Sample:
        parts = [timed([str(kubectl), "kustomize", str(work / "helm-out" / env_name(j))], "kustomize")
                 for j in range(args.envs)]
        return Sample(sum(p.wall for p in parts), sum(p.cpu for p in parts), max(p.maxrss_kb for p in parts), 0)

    print(f"chart row: {args.charts} chart apps x {args.envs} envs, {args.repeat} rounds, "
          f"helm {helm}, kubectl {kubectl}, {os.cpu_count()} cores", flush=True)
    ours()  # warm-up (untimed): page cache, and a check that the repo renders
    for round_no in range(1, args.repeat + 1):
        for name, fn in (("ours", ours), ("helm", helm_all), ("kustomize", kustomize_all)):
            t0 = time.perf_counter()
            sample = fn()
            results[name].append(sample)
            print(f"  round {round_no} {name:<10} wall {sample.wall:7.3f} s  cpu {sample.cpu:7.3f} s  "
                  f"(took {time.perf_counter() - t0:.1f} s)", flush=True)

    def med(name: str, what: str = "wall") -> float:
        return float(statistics.median(getattr(s, what) for s in results[name]))

    helm_kust = med("helm") + med("kustomize")
    print()
    print("| command | wall median (s) | CPU median (s) |")
    print("|---|---:|---:|")
    print(f"| gitops-gen render (cold, {args.charts * args.envs} chart renders) | {med('ours'):.3f} | {med('ours', 'cpu'):.3f} |")
    print(f"| helm template x {args.charts * args.envs} (sequential) | {med('helm'):.3f} | {med('helm', 'cpu'):.3f} |")
    print(f"| + kubectl kustomize x {args.envs} | {med('kustomize'):.3f} | {med('kustomize', 'cpu'):.3f} |")
    print(f"cpu: ours/helm {med('ours', 'cpu') / med('helm', 'cpu'):.3f}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"ratio_vs_helm={med('ours') / med('helm'):.3f} ratio_vs_helm_kustomize={med('ours') / helm_kust:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
