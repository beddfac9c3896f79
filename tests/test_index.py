"""The render index (generator/io/index.py): an unchanged repo is answered without rendering,
and whatever is edited, an incremental `render` or `check` gives exactly what a cold one gives."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import cli
from generator.io import index, memo
from tests.helpers import run, snapshot, write_repo

RACY_NS = 30_000_000  # 30 ms: the tests wait this long after an edit so an index may be saved


@pytest.fixture(autouse=True)
def _short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)


def _settle() -> None:
    time.sleep(RACY_NS / 1e9 + 0.01)


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{{{ include_labels }}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers:
        - name: main
          image: example.com/{app}:1.0
          envFrom: [{{configMapRef: {{name: {app}-config}}}}]
"""


def _app_files(app: str, base: str = "base") -> dict[str, str]:
    return {
        f"{base}/{app}/app.yaml": f"""
            configMaps:
              - name: {app}-config
                literals: {{mode: normal, team: "{{{{ team }}}}"}}
                files: [app.properties]
                dirs: [conf.d]
            """,
        f"{base}/{app}/app.properties": f"name = {app}\n",
        f"{base}/{app}/conf.d/one.conf": "one\n",
        f"{base}/{app}/deployment.yaml.j2": DEPLOYMENT.format(app=app).replace(
            "{{ include_labels }}", '{% include "templates/labels.j2" %}'),
    }


def _repo(root: Path) -> Path:
    files: dict[str, str | bytes] = {
        "gitops-gen.yaml": "vars: {team: core}\nretention: 2\n",
        "templates/labels.j2": "{team: '{{ team }}'}",
        "shared/a.properties": "shared = a\n",
        "shared/b.properties": "shared = b\n",
        "environments/dev/env.yaml": """
            namespace: dev
            configMaps:
              web-config:
                literals: {mode: dev}
            patches:
              - kind: Deployment
                metadata: {name: web}
                spec: {replicas: 2}
            """,
        "environments/dev/patches/api.yaml": "kind: Deployment\nmetadata: {name: api}\nspec: {replicas: 3}\n",
        "environments/prod/env.yaml": "namespace: prod\nvars: {team: ops}\n",
    }
    for app in ("web", "api"):
        files.update(_app_files(app))
    files.update(_app_files("extra", "environments/prod/apps"))
    write_repo(root, files)
    props = root / "base" / "api" / "app.properties"
    props.unlink()
    props.symlink_to(Path("..", "..", "shared", "a.properties"))
    return root


# --- edits ---------------------------------------------------------------------------------


def _append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    if path.is_file():
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def _replace(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    if path.is_file():
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def _remove(root: Path, rel: str) -> None:
    path = root / rel
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _rename(root: Path, old: str, new: str) -> None:
    if (root / old).exists() and not (root / new).exists():
        (root / old).rename(root / new)


def _relink(root: Path, rel: str, target: str) -> None:
    path = root / rel
    if path.is_symlink() or path.exists():
        _remove(root, rel)
    if path.parent.is_dir():
        path.symlink_to(target)


EDITS = {
    "data file": lambda r, n: _append(r, "base/web/app.properties", f"line{n} = {n}\n"),
    "shared file behind a symlink": lambda r, n: _append(r, "shared/a.properties", f"x{n} = {n}\n"),
    "retarget symlink": lambda r, n: _relink(r, "base/api/app.properties", "../../shared/b.properties"),
    "dangling symlink": lambda r, n: _relink(r, "base/api/app.properties", "../../shared/none.properties"),
    "symlink leaving the repo": lambda r, n: _relink(r, "base/api/app.properties", "/etc/hostname"),
    "new file in a dirs folder": lambda r, n: (r / "base/web/conf.d" / f"f{n}.conf").write_text(f"{n}\n") if (r / "base/web/conf.d").is_dir() else None,
    "literal in app.yaml": lambda r, n: _replace(r, "base/web/app.yaml", "mode: normal", f"mode: normal{n}"),
    "env.yaml overlay": lambda r, n: _replace(r, "environments/dev/env.yaml", "mode: dev", f"mode: dev{n}"),
    "env.yaml patch": lambda r, n: _replace(r, "environments/dev/env.yaml", "replicas: 2", f"replicas: {n % 5 + 2}"),
    "env.yaml broken": lambda r, n: _append(r, "environments/prod/env.yaml", "namespace: [\n"),
    "patch file": lambda r, n: _replace(r, "environments/dev/patches/api.yaml", "replicas: 3", f"replicas: {n % 4 + 3}"),
    "template include": lambda r, n: (r / "templates/labels.j2").write_text(f"{{team: '{{{{ team }}}}', n: '{n}'}}"),
    "repo vars": lambda r, n: _replace(r, "gitops-gen.yaml", "team: core", f"team: core{n}"),
    "env vars": lambda r, n: _replace(r, "environments/prod/env.yaml", "team: ops", f"team: ops{n}"),
    "new manifest": lambda r, n: write_repo(r, {f"base/web/svc{n}.yaml": f"apiVersion: v1\nkind: Service\nmetadata: {{name: svc{n}}}\nspec: {{ports: [{{port: 80}}]}}\n"}) if (r / "base/web").is_dir() else None,
    "delete a manifest": lambda r, n: _remove(r, "base/api/deployment.yaml.j2"),
    "delete an app": lambda r, n: _remove(r, "base/web"),
    "rename an app": lambda r, n: _rename(r, "base/api", f"base/api{n}"),
    "new app": lambda r, n: write_repo(r, _app_files(f"new{n}")),
    "new environment": lambda r, n: write_repo(r, {f"environments/e{n}/env.yaml": f"namespace: e{n}\n"}),
    "delete an environment": lambda r, n: _remove(r, "environments/prod"),
    "env.yaml renamed": lambda r, n: _rename(r, "environments/dev/env.yaml", "environments/dev/env.yml"),
    "env-only app data": lambda r, n: _append(r, "environments/prod/apps/extra/app.properties", f"e{n}\n"),
    "hand edit in out/": lambda r, n: _append(r, "out/dev/web/deployment-web.yaml", "# edited\n"),
    "stray file in out/": lambda r, n: write_repo(r, {f"out/dev/web/stray{n}.yaml": "kind: x\n"}),
    "out/ deleted": lambda r, n: _remove(r, "out"),
    "nothing": lambda r, n: None,
}


def _result(root: Path, *args: str, cache: bool = True) -> tuple[int, str, dict[str, bytes]]:
    """A command's exit code, its output (the repo's path made neutral) and out/ afterwards."""
    old = os.environ.get("GITOPS_GEN_CACHE")
    if not cache:
        os.environ["GITOPS_GEN_CACHE"] = "off"
    try:
        result = run(*args, "--repo", root)
    finally:
        if old is None:
            os.environ.pop("GITOPS_GEN_CACHE", None)
        else:
            os.environ["GITOPS_GEN_CACHE"] = old
    return result.exit_code, result.output.replace(str(root), "<repo>"), snapshot(root / "out")


def _same_as_cold(root: Path, scratch: Path, *command: str) -> None:
    """`command` incrementally on `root` and cold on a copy of it (out/ included) agree."""
    cold = scratch / f"cold-{time.monotonic_ns()}"
    shutil.copytree(root, cold, symlinks=True)
    try:
        assert _result(root, *command) == _result(cold, *command, cache=False)
    finally:
        shutil.rmtree(cold)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.booleans()), min_size=1, max_size=6))
def test_incremental_matches_cold_after_any_edits(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, bool]]
) -> None:
    scratch = tmp_path_factory.mktemp("inc")
    root = _repo(scratch / "repo")
    assert run("render", "--repo", root).exit_code == 0
    _settle()
    assert run("render", "--repo", root).exit_code == 0  # saves the first index
    for n, (name, racy) in enumerate(edits):
        EDITS[name](root, n)
        if not racy:
            _settle()  # the commands save an index (a racy edit is not indexed)
        _same_as_cold(root, scratch, "check")
        _same_as_cold(root, scratch, "diff")
        _same_as_cold(root, scratch, "render", "--env", "dev", "--stdout")
        _same_as_cold(root, scratch, "render")
    # The final state once more, after the racy window: the index is used and still agrees.
    _settle()
    _same_as_cold(root, scratch, "render")
    _same_as_cold(root, scratch, "render")
    _same_as_cold(root, scratch, "check")
    _same_as_cold(root, scratch, "diff", "--format", "json")
    _same_as_cold(root, scratch, "render", "--env", "prod", "--stdout", "--app", "extra")


# --- the index is used, and only when it may be ---------------------------------------------


@pytest.fixture
def rendered(tmp_path: Path) -> Iterator[Path]:
    root = _repo(tmp_path / "repo")
    assert run("render", "--repo", root).exit_code == 0
    _settle()
    yield root


def _hits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []
    real = index.lookup_all

    def spy(root: Path, wanted: object) -> object:
        found = real(root, wanted)  # type: ignore[arg-type]
        seen.append(found is not None)
        return found

    monkeypatch.setattr(index, "lookup_all", spy)
    return seen


def test_unchanged_render_and_check_use_the_index(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("render", "--repo", rendered).exit_code == 0  # saves the index (out/ settled)
    seen = _hits(monkeypatch)
    before = snapshot(rendered / "out")
    result = run("render", "--repo", rendered)
    assert result.exit_code == 0 and "out/: 0 written, 0 removed" in result.output
    check = run("check", "--repo", rendered)
    assert check.exit_code == 0 and "out/ is up to date: 2 environments" in check.output
    assert run("diff", "--repo", rendered).exit_code == 0
    stdout = run("render", "--repo", rendered, "--env", "dev", "--stdout")
    assert stdout.exit_code == 0 and "kind: Deployment" in stdout.output
    assert seen == [True, True, True, True]
    assert snapshot(rendered / "out") == before


def test_racy_edit_is_not_indexed(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "RACY_NS", 60 * 1_000_000_000)  # everything is "just edited"
    _append(rendered, "base/web/app.properties", "more = 1\n")
    assert run("render", "--repo", rendered).exit_code == 0
    seen = _hits(monkeypatch)
    assert run("render", "--repo", rendered).exit_code == 0
    assert seen == [False]


def test_corrupt_or_foreign_index_is_a_full_render(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("render", "--repo", rendered).exit_code == 0
    path = index._index_file(rendered.resolve(), "dev")
    assert path is not None and path.is_file()
    data = path.read_bytes()
    seen = _hits(monkeypatch)
    path.write_bytes(data[:-10] + b"0123456789")  # tampered: the HMAC fails
    assert run("check", "--repo", rendered).exit_code == 0
    path.write_bytes(data[: len(data) // 2])  # truncated
    assert run("check", "--repo", rendered).exit_code == 0
    # A genuine index of another environment copied over this one: bound to its name.
    other = index._index_file(rendered.resolve(), "prod")
    assert other is not None
    path.write_bytes(other.read_bytes())
    assert memo.load_entry(path, index._stamp(), b"dev") is None
    assert run("check", "--repo", rendered).exit_code == 0
    assert seen == [False, False, False]


def test_charts_are_not_indexed(tmp_path: Path) -> None:
    reads = index.Reads(str(tmp_path), 0, unindexable="Helm charts")
    report = index.Report(1, (), (), (), ("dev",), True)
    assert not index.save(tmp_path, "dev", reads, report)


def test_identity_sees_symlink_targets(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    link = tmp_path / "link"
    link.symlink_to("a")
    first = index.identity(str(link))
    os.utime(tmp_path / "a", ns=(1, 1))  # the target changes, the link does not
    assert index.identity(str(link)) != first
    assert index.identity(str(tmp_path / "missing")) == b""
    dangling = tmp_path / "dangling"
    dangling.symlink_to("nowhere")
    assert index.identity(str(dangling)).endswith(b"!")


def test_note_records_folders_up_to_the_repo(tmp_path: Path) -> None:
    index.start(tmp_path)
    index.note(tmp_path / "base" / "web" / "app.yaml")
    reads = index.recorded()
    assert reads is not None
    assert reads.paths == {str(tmp_path / "base" / "web" / "app.yaml"), str(tmp_path / "base" / "web"), str(tmp_path / "base")}


def test_cli_constants_match_their_modules() -> None:
    from generator.review import check, graph

    assert cli.DEFAULT_DIFF_LINES == check.DEFAULT_DIFF_LINES
    assert cli.GRAPH_FORMATS == graph.FORMATS


def test_each_environment_is_looked_up_once(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup (an lstat of every input and output) is most of a no-change run: the one that
    named the environments is not done again."""
    assert run("render", "--repo", rendered).exit_code == 0  # saves the index (out/ settled)
    looked: list[str] = []
    real = index.lookup

    def spy(root: Path, env: str) -> index.Report | None:
        looked.append(env)
        return real(root, env)

    monkeypatch.setattr(index, "lookup", spy)
    found = index.lookup_all(rendered.resolve(), ())
    assert found is not None and sorted(found) == ["dev", "prod"]
    assert sorted(looked) == ["dev", "prod"]


def test_out_identities_come_from_the_writer_and_match_a_walk(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`render` and `check` hand the index out/<env>/ as the writer listed and changed it
    (write.Plan.out_paths) instead of walking it again: the same paths as a walk, and the same
    identities, after files and folders were added, rewritten, removed and pruned, with a
    user's own file and an empty folder in out/."""
    saved: list[str] = []
    real = index.save

    def spy(root: Path, env: str, reads: index.Reads, report: index.Report,
            given: Iterable[tuple[str, memo.Stat | None]] | None = None, apps: index.Apps | None = None) -> bool:
        assert given is not None
        outputs = list(given)
        assert sorted(p for p, _ in outputs) == sorted(index._out_paths(root, env))
        for path, st in outputs:
            if st is not None:
                assert st == index.identity(path), path
        saved.append(env)
        return real(root, env, reads, report, outputs, apps)

    monkeypatch.setattr(index, "save", spy)
    write_repo(rendered, {"out/dev/web/notes.md": "a user's file\n"})
    (rendered / "out/dev/empty").mkdir()
    for name in ("data file", "rename an app", "new app", "delete a manifest"):
        EDITS[name](rendered, 7)
    assert run("render", "--repo", rendered).exit_code == 0
    assert not (rendered / "out/dev/api").exists()  # the renamed app's old folder: pruned
    assert sorted(saved) == ["dev", "prod"]
    _settle()
    assert run("check", "--repo", rendered).exit_code == 0
    assert sorted(saved) == ["dev", "dev", "prod", "prod"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=6), _JSON | st.dictionaries(st.text(max_size=8), _JSON, max_size=300),
                            max_size=5))
def test_json_in_pieces_is_json_dumps(body: dict[str, object]) -> None:
    """The index is encoded a group of entries at a time: the same bytes as one `json.dumps`."""
    import json

    assert b"".join(index._json_pieces(body)) == json.dumps(body, separators=(",", ":")).encode()


def test_json_in_pieces_splits_large_mappings() -> None:
    import json

    body = {"inputs": {f"base/app-{i}/\u00e9.yaml": "ab" * i for i in range(1000)}, "files": 3,
            "apps": {f"app-{i}": {"names": [["Deployment", None, f"app-{i}"]]} for i in range(index._GROUP + 1)}}
    pieces = index._json_pieces(body)
    assert len(pieces) > 1000 // index._GROUP + 2
    assert b"".join(pieces) == json.dumps(body, separators=(",", ":")).encode()


def _saved_bodies(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies of the render indexes saved from now on, each file's identity left out."""
    import json

    bodies: list[dict[str, Any]] = []
    real = memo.store_entry

    def spy(path: Path, stamp: tuple[Any, ...], key: bytes, value: bytes | Sequence[bytes]) -> None:
        if path.name.endswith(".index"):
            body = json.loads(b"".join([value] if isinstance(value, bytes) else value))
            body["inputs"], body["outputs"] = sorted(body["inputs"]), sorted(body["outputs"])
            bodies.append(body)
        real(path, stamp, key, value)

    monkeypatch.setattr(memo, "store_entry", spy)
    return bodies


def test_the_index_is_the_same_built_after_the_objects_are_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`publish` lets go of the render's objects once out/ holds their files, before it builds
    the render index (`Rendered.settle`): the index holds what it holds when built while they
    are alive, after a full render and an incremental one alike; and the files `publish`
    returns still read as what it wrote."""
    from generator.incremental import Spliced
    from generator.io.output import Files
    from generator.pipeline import Rendered, Repo, publish

    bodies = {}
    for let_go in (True, False):
        root = _repo(tmp_path / f"repo-{let_go}")
        _settle()  # (an input changed just before the render is not indexed)
        with monkeypatch.context() as patched:
            if not let_go:
                patched.setattr(Rendered, "settle", lambda self, out: None)
            saved = _saved_bodies(patched)
            for n in range(2):
                if n:
                    EDITS["data file"](root, n)
                    _settle()
                files = publish(Repo.open(root), ["dev"], jobs=1).rendered["dev"]
                assert isinstance(files, Spliced) == bool(n)  # the second is rendered incrementally
                fresh = getattr(files, "fresh", files)
                assert isinstance(fresh, Files)
                assert all(isinstance(fresh.source(p), str) for p in fresh) == let_go  # no object kept
                assert {p: files[p] for p in files} == {p: (root / "out/dev" / p).read_text() for p in files}
                _settle()
        bodies[let_go] = saved
    assert len(bodies[True]) == 2 and bodies[True][1]["apps"] != bodies[True][0]["apps"]
    assert bodies[True] == bodies[False]
