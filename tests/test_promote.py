"""`gitops-gen promote`: minimal edits of the target's sources, a render, a pull-request body; and
`skew` finds nothing promotable afterwards."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import deployment, run, snapshot, write_repo
from tests.test_set import _changed, example


def _promotable(repo: Path, *envs: str) -> list[dict]:  # type: ignore[type-arg]
    args = [a for e in envs for a in ("--env", e)]
    doc = json.loads(run("skew", "--repo", repo, *args, "--format", "json").output)
    return [d for d in doc["differences"] if d["promotable"]]


def test_staging_to_prod_then_skew_shows_nothing_promotable(tmp_path: Path) -> None:
    repo = example(tmp_path)
    assert run("render", "--repo", repo).exit_code == 0
    assert run("set", "image", "--repo", repo, "--env", "staging", "engine:1.5.0").exit_code == 0
    assert run("set", "image", "--repo", repo, "--env", "staging", "redis:7.4.1").exit_code == 0
    assert len(_promotable(repo, "staging", "prod")) == 2
    prod = repo / "environments/prod/env.yaml"
    before = prod.read_bytes()
    result = run("promote", "--repo", repo, "--from", "staging", "--to", "prod")
    assert result.exit_code == 0, result.output
    body = result.stdout
    assert body.startswith("## Promote staging → prod\n")
    assert "- image of `Deployment/exchange-engine` container `engine`: `ghcr.io/exchange/engine:1.4.2` → " \
           "`ghcr.io/exchange/engine:1.5.0`" in body
    assert "<!-- gitops-gen diff -->" in body and "image tag 1.4.2 → 1.5.0 (engine; images: ghcr.io/exchange/engine at " \
           "environments/prod/env.yaml:" in body
    removed, added = _changed(before, prod.read_bytes())
    assert removed == [] and "".join(added) == (
        "images:\n  - name: ghcr.io/exchange/engine\n    newTag: 1.5.0\n  - name: redis\n    newTag: 7.4.1\n")
    assert _promotable(repo, "staging", "prod") == []
    assert run("check", "--repo", repo).exit_code == 0
    again = run("promote", "--repo", repo, "--from", "staging", "--to", "prod")
    assert again.exit_code == 0 and "nothing to promote" in again.output


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    repo = example(tmp_path)
    before = snapshot(repo)
    result = run("promote", "--repo", repo, "--from", "dev", "--to", "staging", "--dry-run", "--app", "engine")
    assert result.exit_code == 0
    assert "+images:\n+  - name: ghcr.io/exchange/engine\n+    newTag: 1.5.0-rc.1\n" in result.output
    assert "db-processor" not in result.output
    assert snapshot(repo) == before


def test_config_keys_are_promoted_when_named(tmp_path: Path) -> None:
    repo = example(tmp_path)
    result = run("promote", "--repo", repo, "--from", "prod", "--to", "staging", "--config", "WS_MAX_CONNECTIONS")
    assert result.exit_code == 0, result.output
    assert "`ConfigMap/exchange-ws-stream-config` key `WS_MAX_CONNECTIONS`: `10000` → `50000`" in result.stdout
    text = (repo / "environments/staging/env.yaml").read_text()
    assert text.endswith("configMaps:\n  exchange-ws-stream-config:\n    literals:\n      WS_MAX_CONNECTIONS: \"50000\"\n")
    doc = json.loads(run("skew", "--repo", repo, "--env", "prod", "--env", "staging", "--format", "json").output)
    assert not [d for d in doc["differences"] if d.get("key") == "WS_MAX_CONNECTIONS"]
    assert run("check", "--repo", repo).exit_code == 0


def test_templated_value_is_copied_as_text(tmp_path: Path) -> None:
    repo = example(tmp_path)
    env = repo / "environments/staging/env.yaml"
    env.write_text(env.read_text() + "configMaps:\n  exchange-engine-config:\n    literals:\n"
                   "      LOG_LEVEL: \"{% raw %}{{ level }}{% endraw %}\"\n")
    assert run("promote", "--repo", repo, "--from", "staging", "--to", "prod", "--config", "LOG_LEVEL",
               "--app", "engine").exit_code == 0
    assert '      LOG_LEVEL: "{% raw %}{{ level }}{% endraw %}"\n' in (repo / "environments/prod/env.yaml").read_text()


def test_an_image_shared_with_an_app_not_promoted_is_refused(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {
        "base/a/deployment.yaml": deployment("a", "containers: [{name: c, image: 'busybox:1.36'}]"),
        "base/b/deployment.yaml": deployment("b", "containers: [{name: c, image: 'busybox:1.36'}]"),
        "environments/dev/env.yaml": "namespace: dev\nimages: [{name: busybox, newTag: '1.37'}]\n",
        "environments/prod/env.yaml": "namespace: prod\n",
    })
    before = snapshot(repo)
    result = run("promote", "--repo", repo, "--from", "dev", "--to", "prod", "--app", "a")
    assert result.exit_code == 1
    assert "these containers would change too: Deployment/b c" in result.output
    assert snapshot(repo) == before
    assert run("promote", "--repo", repo, "--from", "dev", "--to", "prod").exit_code == 0


def test_usage_errors(tmp_path: Path) -> None:
    repo = example(tmp_path)
    assert run("promote", "--repo", repo, "--from", "prod", "--to", "prod").exit_code == 2
    assert run("promote", "--repo", repo, "--from", "qa", "--to", "prod").exit_code == 2
    assert run("promote", "--repo", repo, "--to", "prod").exit_code == 2
