"""Helm hooks in committed output.

GitOps engines apply a folder; they do not run `helm install`, so a `helm.sh/hook` annotation
means nothing to Flux and only some of them have an Argo CD equivalent. Policy per chart
(`chart.hooks`):

- `argocd` (default): install/upgrade/delete hooks become Argo CD resource hooks
  (argo-cd docs, "Sync Phases and Waves"): pre-install/pre-upgrade -> PreSync,
  post-install/post-upgrade -> PostSync, pre-delete -> PreDelete, post-delete -> PostDelete;
  `helm.sh/hook-weight` -> `argocd.argoproj.io/sync-wave`; `helm.sh/hook-delete-policy`
  before-hook-creation/hook-succeeded/hook-failed -> BeforeHookCreation/HookSucceeded/HookFailed.
  The Helm annotations are removed. Rollback hooks have no equivalent and are refused.
- `drop`: hook objects are left out of the output.

`helm test` hooks are never rendered (`--skip-tests`).
"""

from __future__ import annotations

from typing import Any

from generator.errors import ChartError

HOOK = "helm.sh/hook"
WEIGHT = "helm.sh/hook-weight"
DELETE_POLICY = "helm.sh/hook-delete-policy"
ARGO_HOOK = "argocd.argoproj.io/hook"
ARGO_WAVE = "argocd.argoproj.io/sync-wave"
ARGO_DELETE = "argocd.argoproj.io/hook-delete-policy"

PHASES = {
    "pre-install": "PreSync", "pre-upgrade": "PreSync",
    "post-install": "PostSync", "post-upgrade": "PostSync",
    "pre-delete": "PreDelete", "post-delete": "PostDelete",
}
DELETE_POLICIES = {
    "before-hook-creation": "BeforeHookCreation", "hook-succeeded": "HookSucceeded", "hook-failed": "HookFailed",
}


def _split(value: Any) -> list[str]:
    return [p.strip() for p in str(value).split(",") if p.strip()]


def is_hook(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return isinstance(annotations, dict) and HOOK in annotations


def to_argocd(obj: dict[str, Any], where: str) -> None:
    """Rewrite a Helm hook's annotations into Argo CD's, in place; refuse hooks without one."""
    annotations: dict[str, Any] = obj["metadata"]["annotations"]
    events = _split(annotations.pop(HOOK))
    unknown = [e for e in events if e not in PHASES]
    if unknown:
        raise ChartError(
            f"{obj.get('kind')} {obj['metadata'].get('name')!r} is a Helm `{unknown[0]}` hook, which has no "
            "GitOps equivalent (Argo CD and Flux never roll a release back)",
            file=where,
            hint="turn the hook off with the chart's values, or set `hooks: drop` under `chart:` in app.yaml",
        )
    phases = sorted({PHASES[e] for e in events}, key=list(PHASES.values()).index)
    annotations[ARGO_HOOK] = ",".join(phases)
    if WEIGHT in annotations:
        annotations[ARGO_WAVE] = str(annotations.pop(WEIGHT))
    if DELETE_POLICY in annotations:
        policies = [DELETE_POLICIES[p] for p in _split(annotations.pop(DELETE_POLICY)) if p in DELETE_POLICIES]
        if policies:
            annotations[ARGO_DELETE] = ",".join(policies)
