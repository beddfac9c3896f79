"""The bad-input corpus: every case is one clear error (exit 1, one `error:` line naming the
file and line, no traceback) and leaves out/ byte-for-byte as it was.

Each case is `tests/bad_inputs/<case>/`: `repo/` holds the files laid over the small valid repo
`tests/bad_inputs/_base/` (a changed file replaces the base's), and `expected.txt` the
substrings the message must contain, one a line (the first names the file and line). Cases
that need files too big to commit, links, or a running render are set up by `SETUP` below.
"""

from __future__ import annotations

import fcntl
import io
import os
import resource
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import run, snapshot

CORPUS = Path(__file__).parent / "bad_inputs"
BASE = CORPUS / "_base"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))
ROOT = Path(__file__).resolve().parent.parent


def _big_configmap(repo: Path) -> None:
    # Two files under 1 MiB each, just over it together (one file alone is refused before it is read).
    app = repo / "base/web/app.yaml"
    app.write_text(app.read_text() + "  - name: big-config\n    files: [big.txt, big2.txt]\n")
    for name in ("big.txt", "big2.txt"):
        (repo / "base/web" / name).write_text(("x" * 1023 + "\n") * 513)


def _outside_file(repo: Path) -> Path:
    outside = repo.parent / "outside.txt"
    outside.write_text("not in the repo\n")
    return outside


def _symlink_outside(repo: Path) -> None:
    (repo / "base/web/linked.conf").symlink_to(_outside_file(repo))
    app = repo / "base/web/app.yaml"
    app.write_text(app.read_text().replace("[nginx.conf]", "[nginx.conf, linked.conf]"))


def _include_symlink_outside(repo: Path) -> None:
    (repo / "base/web/labels.txt").symlink_to(_outside_file(repo))


def _deep_block_nesting(repo: Path) -> None:
    # Block style (no brackets): 1,500 mappings, each one space deeper than the last.
    lines = ["apiVersion: example.com/v1", "kind: Widget", "metadata: {name: deep}", "spec:"]
    lines += [" " * (i + 1) + f"k{i}:" for i in range(1500)]
    (repo / "base/web/deep.yaml").write_text("\n".join(lines) + " x\n")


def _unowned_file(repo: Path) -> None:
    # A hand-written file where the render wants to write one (a new object in the base).
    (repo / "base/web/account.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web}\n")
    (repo / "out/dev/web/serviceaccount-web.yaml").write_text("# written by hand\n")


def _outside_folder(repo: Path) -> Path:
    outside = repo.parent / "outside"
    (outside / "app").mkdir(parents=True)
    (outside / "app" / "deployment.yaml").write_text((repo / "base/web/deployment.yaml").read_text())
    (outside / "env.yaml").write_text("namespace: prod\n")
    return outside


def _manifest_symlink_outside(repo: Path) -> None:
    outside = repo.parent / "secret.yaml"
    outside.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: stolen}\n")
    (repo / "base/web/stolen.yaml").symlink_to(outside)


def _app_folder_symlink_outside(repo: Path) -> None:
    (repo / "base/other").symlink_to(_outside_folder(repo) / "app")


def _env_folder_symlink_outside(repo: Path) -> None:
    (repo / "environments/prod").symlink_to(_outside_folder(repo))


def _env_yaml_dangling(repo: Path) -> None:
    env_yaml = repo / "environments/dev/env.yaml"
    env_yaml.unlink()
    env_yaml.symlink_to("env.yaml.moved")


def _app_folder_dangling(repo: Path) -> None:
    (repo / "base/gone").symlink_to("../removed-app")


def _manifest_symlink_loop(repo: Path) -> None:
    (repo / "base/web/a.yaml").symlink_to("b.yaml")
    (repo / "base/web/b.yaml").symlink_to("a.yaml")


def _data_file_dangling(repo: Path) -> None:
    (repo / "base/web/nginx.conf").unlink()
    (repo / "base/web/nginx.conf").symlink_to("conf/nginx.conf")


def _patch_symlink_outside(repo: Path) -> None:
    outside = repo.parent / "patch.yaml"
    outside.write_text("kind: Deployment\nmetadata: {name: web}\nspec: {replicas: 9}\n")
    (repo / "environments/dev/patches").mkdir()
    (repo / "environments/dev/patches/scale.yaml").symlink_to(outside)


def _fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def _huge_data_file(repo: Path) -> None:
    app = repo / "base/web/app.yaml"
    app.write_text(app.read_text().replace("[nginx.conf]", "[nginx.conf, huge.bin]"))
    _sparse(repo / "base/web/huge.bin", 8 * 1024**3)  # 8 GiB, no disk used


def _fifo_in_dirs_folder(repo: Path) -> None:
    (repo / "base/web/conf.d").mkdir()
    (repo / "base/web/conf.d/default.conf").write_text("server {}\n")
    _fifo(repo / "base/web/conf.d/stream.conf")
    app = repo / "base/web/app.yaml"
    app.write_text(app.read_text().replace("files: [nginx.conf]", "files: [nginx.conf]\n    dirs: [conf.d]"))


CHART = "base/web/chart"  # the chart folder of the chart_* cases (in their repo/)


def _chart_archive(repo: Path, *bad: tarfile.TarInfo) -> None:
    """base/web/chart.tgz: the chart folder of chart_symlink_outside packaged, plus `bad` members."""
    folder = CORPUS / "chart_symlink_outside/repo" / CHART
    with tarfile.open(repo / "base/web/chart.tgz", "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, f"web-extra/{path.relative_to(folder).as_posix()}")
        for member in bad:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 0 if link else 4
    return info


def _vendor_folder_outside(repo: Path) -> None:
    outside = repo.parent / "vendored"
    shutil.copytree(CORPUS / "chart_lock_mismatch/repo/charts", outside)
    (repo / "charts").symlink_to(outside)


def _values_symlink_outside(repo: Path) -> None:
    (repo / "base/web/extra-values.yaml").symlink_to(_outside_file(repo))


def _out_is_a_file(repo: Path) -> None:
    shutil.rmtree(repo / "out")
    (repo / "out").write_text("not a folder\n")


def _out_env_is_a_file(repo: Path) -> None:
    shutil.rmtree(repo / "out/dev")
    (repo / "out/dev").write_text("not a folder\n")


def _symlink_at_temporary_name(repo: Path) -> None:
    # A link planted where the writer stages a file: writing through it would leave the repo.
    (repo / "out/dev/web/.gitops-gen-tmp.deployment-web.yaml").symlink_to(_outside_file(repo))


def _out_env_symlink_outside(repo: Path) -> None:
    outside = repo.parent / "elsewhere"
    shutil.copytree(repo / "out/dev", outside)
    shutil.rmtree(repo / "out/dev")
    (repo / "out/dev").symlink_to(outside)


def _out_symlink_outside(repo: Path) -> None:
    outside = repo.parent / "elsewhere"
    shutil.copytree(repo / "out", outside)
    shutil.rmtree(repo / "out")
    (repo / "out").symlink_to(outside)


def _retired_env(env_file: Callable[[Path], None]) -> Callable[[Path], None]:
    """An environment `qa` rendered before, whose env.yaml is now gone in some way."""
    def setup(repo: Path) -> None:
        shutil.copytree(repo / "out/dev", repo / "out/qa")
        (repo / "environments/qa").mkdir()
        env_file(repo / "environments/qa")
    return setup


SETUP: dict[str, Callable[[Path], None]] = {
    "manifest_symlink_outside": _manifest_symlink_outside,
    "app_folder_symlink_outside": _app_folder_symlink_outside,
    "env_folder_symlink_outside": _env_folder_symlink_outside,
    "env_yaml_dangling": _env_yaml_dangling,
    "app_folder_dangling": _app_folder_dangling,
    "manifest_symlink_loop": _manifest_symlink_loop,
    "data_file_dangling": _data_file_dangling,
    "patch_symlink_outside": _patch_symlink_outside,
    "fifo_app_yaml": lambda repo: _fifo(repo / "base/web/app.yaml"),
    "fifo_repo_file": lambda repo: _fifo(repo / "gitops-gen.yaml"),
    "fifo_env_yaml": lambda repo: _fifo(repo / "environments/dev/env.yaml"),
    "fifo_manifest": lambda repo: _fifo(repo / "base/web/extra.yaml"),
    "fifo_in_dirs_folder": _fifo_in_dirs_folder,
    "jinja_include_fifo": lambda repo: _fifo(repo / "base/web/part.txt"),
    "data_file_too_big": _huge_data_file,
    "manifest_too_big": lambda repo: _sparse(repo / "base/web/huge.yaml", 32 * 1024**2),
    "out_is_a_file": _out_is_a_file,
    "out_env_is_a_file": _out_env_is_a_file,
    "symlink_in_out": _symlink_at_temporary_name,
    "out_env_symlink_outside": _out_env_symlink_outside,
    "out_symlink_outside": _out_symlink_outside,
    "env_yaml_renamed": _retired_env(lambda qa: (qa / "env.yml").write_text("namespace: qa\n")),
    "env_yaml_dangling_symlink": _retired_env(lambda qa: (qa / "env.yaml").symlink_to(qa / "gone.yaml")),
    "configmap_too_big": _big_configmap,
    "file_symlink_outside": _symlink_outside,
    "jinja_include_symlink": _include_symlink_outside,
    "deep_nesting_block": _deep_block_nesting,
    "unowned_file_in_the_way": _unowned_file,
    "chart_symlink_outside": lambda repo: (repo / CHART / "templates/stolen.yaml").symlink_to(_outside_file(repo)),
    "chart_fifo": lambda repo: _fifo(repo / CHART / "templates/pipe.yaml"),
    "chart_dangling_symlink": lambda repo: (repo / CHART / "values.yaml").symlink_to("values.yml"),
    "chart_symlink_loop": lambda repo: (repo / CHART / "templates/again").symlink_to(".."),
    "chart_file_too_big": lambda repo: _sparse(repo / CHART / "templates/huge.yaml", 17 * 1024**2),
    "chart_archive_too_big": lambda repo: _sparse(repo / "base/web/chart.tgz", 40 * 1024**2),
    "chart_archive_symlink_member": lambda repo: _chart_archive(
        repo, _member("web-extra/templates/stolen.yaml", tarfile.SYMTYPE, "/etc/passwd")),
    "chart_archive_dotdot_member": lambda repo: _chart_archive(repo, _member("web-extra/../../outside.yaml")),
    "chart_vendor_symlink_outside": _vendor_folder_outside,
    "chart_values_symlink_outside": _values_symlink_outside,
}
# Cases run in a child process with a memory and CPU ceiling: a parser that expanded the alias
# bomb or recursed without bound would be killed there instead of hanging the suite.
LOCKED = "render_already_running"  # run while the test holds the lock of out/
BOUNDED = {
    "alias_bomb", "deep_nesting", "deep_nesting_block", "deep_nesting_mixed", "deep_nesting_sequences",
    "fifo_app_yaml", "fifo_repo_file", "fifo_env_yaml", "fifo_manifest", "fifo_in_dirs_folder", "jinja_include_fifo",
    "data_file_too_big", "manifest_too_big",
    "jinja_integer_bomb", "jinja_string_bomb", "jinja_nested_loops", "jinja_recursive_macro",
    "jinja_output_bomb", "jinja_macro_output_bomb", "jinja_range_too_long",
    "chart_fifo", "chart_file_too_big", "chart_archive_too_big",
}
MEMORY_LIMIT = 1024 * 1024 * 1024
CPU_SECONDS = 60
WALL_SECONDS = 120  # a render blocked on a FIFO uses no CPU: the wall clock stops it


@contextmanager
def held_lock(out: Path) -> Iterator[None]:
    """Hold the render lock on out/ the way a running render does (write.locked)."""
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def rendered_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The valid base repo with its out/ rendered, plus a hand-written file the render must keep."""
    repo = tmp_path_factory.mktemp("base") / "repo"
    shutil.copytree(BASE, repo)
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    (repo / "out/dev/NOTES.md").write_text("written by hand\n")
    return repo


def prepare(case: str, rendered: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(rendered, repo, symlinks=True)
    if (CORPUS / case / "repo").is_dir():
        shutil.copytree(CORPUS / case / "repo", repo, dirs_exist_ok=True)
    SETUP.get(case, lambda _: None)(repo)
    return repo


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def render_bounded(repo: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "render", "--repo", str(repo)],
        cwd=ROOT, capture_output=True, text=True, preexec_fn=_limits, check=False, timeout=WALL_SECONDS,
    )
    return proc.returncode, proc.stdout + proc.stderr


def render(case: str, repo: Path) -> tuple[int, str]:
    if case in BOUNDED:
        return render_bounded(repo)
    if case == LOCKED:
        with held_lock(repo / "out"):
            result = run("render", "--repo", repo)
    else:
        result = run("render", "--repo", repo)
    return result.exit_code, result.output


def test_every_case_has_expectations() -> None:
    assert len(CASES) >= 60
    for case in CASES:
        expected = CORPUS / case / "expected.txt"
        assert expected.is_file(), f"{case} has no expected.txt"
        assert (CORPUS / case / "repo").is_dir() or case in SETUP or case == LOCKED, f"{case} changes nothing"


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_error(case: str, rendered_base: Path, tmp_path: Path) -> None:
    repo = prepare(case, rendered_base, tmp_path)
    before = snapshot(repo / "out")
    code, output = render(case, repo)
    assert code == 1, output
    assert "Traceback" not in output and "internal error" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    for wanted in (CORPUS / case / "expected.txt").read_text().splitlines():
        if wanted:
            assert wanted in output, f"{wanted!r} not in:\n{output}"
    assert snapshot(repo / "out") == before


def test_unknown_environment_is_a_usage_error(rendered_base: Path, tmp_path: Path) -> None:
    repo = prepare("unknown_environment", rendered_base, tmp_path)
    before = snapshot(repo / "out")
    result = run("render", "--repo", repo, "--env", "nope")
    assert result.exit_code == 2, result.output
    assert "unknown environment 'nope'; environments: dev" in result.output
    assert "Traceback" not in result.output
    assert snapshot(repo / "out") == before


def test_the_base_repo_renders(rendered_base: Path) -> None:
    # The corpus means something only if each case breaks a repo that works.
    result = run("render", "--repo", rendered_base)
    assert result.exit_code == 0, result.output
    assert "0 written, 0 removed, 4 unchanged" in result.output
