"""Bots that bump image tags edit `images:` entries: Renovate's regex manager (the config shipped
in docs/bots/renovate.json) and Flux image automation's setter markers. Neither bot runs here,
so each test applies the bot's documented rule to the file (Renovate: replace the
`currentValue` capture; Flux: replace the value before a `{"$imagepolicy": ...}` marker) and
checks what gitops-gen renders; and that `set image` keeps the format and the markers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import load_out, run
from tests.test_set import ROOT, corpus_repo, example

RENOVATE = json.loads((ROOT / "docs/bots/renovate.json").read_text())
FLUX_MARKER = re.compile(r"""^(?P<head>[^#\n]*?:\s*)(?P<q>["']?)(?P<value>[^"'\s#]+)(?P=q)(?P<tail>\s*#\s*\{"\$imagepolicy":\s*"(?P<policy>[^"]+)"\})""", re.M)


def renovate_patterns() -> list[re.Pattern[str]]:
    # Renovate's regexes are ECMAScript (run by RE2): named groups are (?<name>...), Python's (?P<name>...).
    manager = RENOVATE["customManagers"][0]
    return [re.compile(s.replace("(?<", "(?P<")) for s in manager["matchStrings"]]


def renovate_files(repo: Path) -> list[Path]:
    patterns = [re.compile(p.strip("/")) for p in RENOVATE["customManagers"][0]["managerFilePatterns"]]
    return [p for p in sorted(repo.rglob("*.yaml"))
            if any(r.search(p.relative_to(repo).as_posix()) for r in patterns)]


def renovate_extract(text: str) -> list[dict[str, str | None]]:
    return [m.groupdict() for pattern in renovate_patterns() for m in pattern.finditer(text)]


def renovate_update(text: str, dep: str, new_value: str) -> str:
    for pattern in renovate_patterns():
        for m in pattern.finditer(text):
            if m.group("depName") == dep:
                start, end = m.span("currentValue")
                return text[:start] + new_value + text[end:]
    raise AssertionError(f"no dependency {dep}")


def flux_update(text: str, policy: str, latest: str) -> str:
    """What the Setters strategy does with the newest image of `policy` (`ns:name`): the tag on
    `:tag` markers, the name on `:name` markers, the whole image on plain markers."""
    name, _, tag = latest.rpartition(":")

    def replace(m: re.Match[str]) -> str:
        ref = m.group("policy")
        value = {policy: latest, f"{policy}:tag": tag, f"{policy}:name": name}.get(ref)
        return m.group(0) if value is None else f"{m.group('head')}{m.group('q')}{value}{m.group('q')}{m.group('tail')}"

    return FLUX_MARKER.sub(replace, text)


def test_renovate_finds_what_set_image_writes_and_its_update_renders(tmp_path: Path) -> None:
    repo = example(tmp_path)
    assert run("set", "image", "--repo", repo, "--env", "prod", "engine=registry.example/exchange-engine:1.5.0").exit_code == 0
    env = repo / "environments/prod/env.yaml"
    assert env in renovate_files(repo) and (repo / "environments/dev/env.yaml") in renovate_files(repo)
    [dep] = renovate_extract(env.read_text())
    assert dep == {"depName": "ghcr.io/exchange/engine", "packageName": "registry.example/exchange-engine",
                   "currentValue": "1.5.0", "currentDigest": None}
    [dev] = renovate_extract((repo / "environments/dev/env.yaml").read_text())
    assert (dev["depName"], dev["currentValue"]) == ("ghcr.io/exchange/db-processor", "2.2.0-rc.2")
    env.write_text(renovate_update(env.read_text(), "ghcr.io/exchange/engine", "1.6.0"))
    assert run("render", "--repo", repo).exit_code == 0
    deploy = load_out(repo / "out/prod")["engine/deployment-exchange-engine.yaml"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/exchange-engine:1.6.0"


def test_renovate_reads_quoted_commented_and_digest_pinned_entries() -> None:
    text = ('images:\n  - name: "nginx"  # web\n    newTag: \'1.26\' # {"$imagepolicy": "flux-system:nginx:tag"}\n'
            f"    digest: sha256:{'a' * 64}\n")
    [dep] = renovate_extract(text)
    assert dep == {"depName": "nginx", "packageName": None, "currentValue": "1.26", "currentDigest": "sha256:" + "a" * 64}
    assert "newTag: '1.27' # {" in renovate_update(text, "nginx", "1.27")


def test_flux_setters_update_entries_and_set_image_keeps_the_markers(tmp_path: Path) -> None:
    repo = corpus_repo(tmp_path, "block_comments.yaml", False)
    env = repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace(
        '    newTag: "1.26"', '    newName: nginx # {"$imagepolicy": "flux-system:nginx:name"}\n    newTag: "1.26"'))
    env.write_text(flux_update(env.read_text(), "flux-system:nginx", "mirror.example/nginx:1.28"))
    assert 'newName: mirror.example/nginx # {"$imagepolicy": "flux-system:nginx:name"}' in env.read_text()
    assert 'newTag: "1.28" # {"$imagepolicy": "flux-system:nginx:tag"}' in env.read_text()
    assert run("render", "--repo", repo).exit_code == 0
    pod = load_out(repo / "out/dev")["web/deployment-web.yaml"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "mirror.example/nginx:1.28"
    assert run("set", "image", "--repo", repo, "--env", "dev", "nginx=mirror.example/nginx:1.29").exit_code == 0
    text = env.read_text()
    assert 'newTag: "1.29" # {"$imagepolicy": "flux-system:nginx:tag"}' in text
    assert 'newName: mirror.example/nginx # {"$imagepolicy": "flux-system:nginx:name"}' in text
    # The marker still finds its field: the next Flux run updates the line `set image` edited.
    assert 'newTag: "1.30" #' in flux_update(text, "flux-system:nginx", "mirror.example/nginx:1.30")
