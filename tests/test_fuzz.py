"""Property: whatever a pull request does to a repo's YAML, a render either succeeds or stops with
one clean error (exit 1, one `error:` line, no traceback, never the internal-error exit 70), and
out/ is never half-written: untouched on error, complete and consistent on success.

Inputs are mutations of the small valid repo of the bad-input corpus (tests/bad_inputs/_base):
character and line edits of its YAML text, and values of its parsed documents swapped for values
of other types. Examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.io.output import KUSTOMIZATION, is_owned
from generator.io.yaml_io import iter_paths
from tests.helpers import run, snapshot

BASE = Path(__file__).parent / "bad_inputs" / "_base"
FILES = sorted(p.relative_to(BASE).as_posix() for p in BASE.rglob("*.yaml"))
HAND_WRITTEN = "dev/NOTES.md"
FUZZ = settings(
    derandomize=True, database=None, deadline=None, max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def rendered_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("fuzz") / "repo"
    shutil.copytree(BASE, repo)
    assert run("render", "--repo", repo).exit_code == 0
    (repo / "out" / HAND_WRITTEN).write_text("written by hand\n")
    return repo


@contextmanager
def copy_of(repo: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "repo"
        shutil.copytree(repo, target)
        yield target


def assert_render_is_clean(repo: Path) -> None:
    before = snapshot(repo / "out")
    result = run("render", "--repo", repo)
    output = result.output
    assert result.exit_code in (0, 1), output
    assert "Traceback" not in output and "internal error" not in output, output
    after = snapshot(repo / "out")
    if result.exit_code == 1:
        assert sum(line.startswith("error: ") for line in output.splitlines()) == 1, output
        assert after == before
        return
    # Success: the folder is whole. Every generated file is listed, every listed file exists and
    # parses, nothing temporary is left behind, and the hand-written file is kept.
    assert after[HAND_WRITTEN] == before[HAND_WRITTEN]
    env_files = {path.split("/", 1)[1]: text for path, text in after.items() if path.startswith("dev/")}
    listed = yaml.safe_load(env_files[KUSTOMIZATION].decode())["resources"]
    owned = sorted(p for p, text in env_files.items() if p != KUSTOMIZATION and is_owned(text.decode()))
    assert listed == owned
    assert not [p for p in after if "/.gitops-gen-" in p or p.startswith(".gitops-gen-")]
    for path in owned:
        assert isinstance(yaml.safe_load(env_files[path].decode()), dict)


# -- text mutations --------------------------------------------------------------------------

YAML_CHARS = st.sampled_from(list(":-[]{}&*!|>'\"#%@,? \n\tx0aZ9._/=") + ["{{", "{%", "\\", "é", "\x00"])


@st.composite
def text_edit(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    kind = draw(st.sampled_from(["flip", "delete", "duplicate", "insert", "drop line", "copy line",
                                 "swap lines", "indent", "dedent"]))
    if kind in ("flip", "delete", "duplicate", "insert"):
        if not text:
            return draw(YAML_CHARS)
        i = draw(st.integers(0, len(text) - 1))
        if kind == "flip":
            return text[:i] + draw(YAML_CHARS) + text[i + 1:]
        if kind == "delete":
            return text[:i] + text[i + 1:]
        if kind == "duplicate":
            return text[:i] + text[i] + text[i:]
        return text[:i] + draw(YAML_CHARS) + text[i:]
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "drop line":
        del lines[i]
    elif kind == "copy line":
        lines.insert(i, lines[i])
    elif kind == "swap lines":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = "  " + lines[i]
    else:
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i].lstrip()
    return "\n".join(lines)


@st.composite
def text_mutations(draw: st.DrawFn) -> dict[str, str]:
    changed: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 3))):
        rel = draw(st.sampled_from(FILES))
        text = changed.get(rel, (BASE / rel).read_text())
        changed[rel] = draw(text_edit(text))
    return changed


@FUZZ
@given(changes=text_mutations())
def test_mutated_text_renders_or_fails_cleanly(rendered_base: Path, changes: dict[str, str]) -> None:
    with copy_of(rendered_base) as repo:
        for rel, text in changes.items():
            (repo / rel).write_text(text, encoding="utf-8")
        assert_render_is_clean(repo)


# -- type swaps ------------------------------------------------------------------------------

ODD_VALUES = st.sampled_from([
    None, True, False, 0, -1, 3, 2**40, 1.5, float("inf"), "", "x", "3", "true", "Web_App", "a" * 300,
    [], ["x"], [1, 2], {}, {"x": 1}, {"name": "web"}, {"$patch": "delete"}, [{"name": "x"}],
    "{{ undefined_var }}", "../../etc/passwd", "/etc/hostname",
])


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    holder = doc
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return doc


@st.composite
def type_swaps(draw: st.DrawFn) -> dict[str, str]:
    changed: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 2))):
        rel = draw(st.sampled_from(FILES))
        docs = list(yaml.safe_load_all(changed.get(rel, (BASE / rel).read_text())))
        index = draw(st.integers(0, len(docs) - 1))
        path = draw(st.sampled_from(list(iter_paths(docs[index]))))
        docs[index] = replaced(docs[index], path, draw(ODD_VALUES))
        changed[rel] = yaml.safe_dump_all(docs, sort_keys=False)
    return changed


@FUZZ
@given(changes=type_swaps())
def test_swapped_types_render_or_fail_cleanly(rendered_base: Path, changes: dict[str, str]) -> None:
    with copy_of(rendered_base) as repo:
        for rel, text in changes.items():
            (repo / rel).write_text(text, encoding="utf-8")
        assert_render_is_clean(repo)
