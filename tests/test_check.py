"""`check`: out/ compared with a fresh render; stale, missing and extra files; nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import Result

from generator.review.check import bounded_diff, check, fix_command, program_name
from generator.io.write import orphaned_envs
from generator.pipeline import Repo
from tests.helpers import GOLDEN_DIFF_REPO, rendered_copy, snapshot, run as cli




@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return rendered_copy(GOLDEN_DIFF_REPO, tmp_path / "repo")


def check_unchanged(root: Path, *args: str) -> Result:
    """Run check and prove it wrote nothing (byte-identical out/, same mtimes)."""
    before = snapshot(root / "out")
    mtimes = {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*")}
    result = cli("check", "--repo", root, "-j", "1", *args)
    assert snapshot(root / "out") == before
    assert {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*")} == mtimes
    return result


def test_up_to_date(repo: Path) -> None:
    result = check_unchanged(repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == "out/ is up to date: 2 environments, 14 files\n"


def test_stale_file(repo: Path) -> None:
    path = repo / "environments/prod/env.yaml"
    path.write_text(path.read_text().replace("replicas: 4", "replicas: 5"))
    result = check_unchanged(repo)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "stale: out/prod/web/deployment-web.yaml"
    assert "    --- a/out/prod/web/deployment-web.yaml" in lines
    assert "    -  replicas: 4" in lines
    assert "    +  replicas: 5" in lines
    assert lines[-2] == "out/ does not match the sources (1 stale, 0 missing, 0 extra). To fix it, run:"
    assert lines[-1] == f"    gitops-gen render --repo {repo}"


def test_missing_file(repo: Path) -> None:
    (repo / "out/dev/worker/deployment-worker.yaml").unlink()
    result = check_unchanged(repo)
    assert result.exit_code == 1
    assert "missing: out/dev/worker/deployment-worker.yaml" in result.stdout
    assert "    --- /dev/null" in result.stdout
    assert "(0 stale, 1 missing, 0 extra)" in result.stdout


def test_extra_files(repo: Path) -> None:
    generated = (repo / "out/dev/web/service-web.yaml").read_text()
    (repo / "out/dev/web/service-old.yaml").write_text(generated)
    (repo / "out/qa/web").mkdir(parents=True)
    (repo / "out/qa/web/service-web.yaml").write_text(generated)  # an environment that was deleted
    (repo / "out/dev/web/NOTES.md").write_text("not generated: never extra\n")
    result = check_unchanged(repo)
    assert result.exit_code == 1
    problems = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    # the deleted environment comes first and loud: render would refuse to delete it unasked
    assert problems[0].startswith("ENVIRONMENT REMOVED: out/qa/ would be deleted (environments/qa/ does not exist)")
    assert problems[1:3] == ["extra: out/dev/web/service-old.yaml", "extra: out/qa/web/service-web.yaml"]
    assert "    +++ /dev/null" in result.stdout
    assert "NOTES.md" not in result.stdout
    assert "(0 stale, 0 missing, 2 extra)" in result.stdout
    assert result.stdout.splitlines()[-1] == f"    gitops-gen render --repo {repo} --prune-env qa"
    # With --env, other env folders are none of check's business (render leaves them too).
    only_dev = check_unchanged(repo, "--env", "dev")
    assert "out/qa" not in only_dev.stdout
    assert only_dev.stdout.splitlines()[-1] == f"    gitops-gen render --repo {repo} --env dev"


def test_check_agrees_with_render(repo: Path) -> None:
    path = repo / "base/web/app.yaml"
    path.write_text(path.read_text().replace("greeting: hello", "greeting: hi"))
    assert check_unchanged(repo).exit_code == 1
    assert cli("render", "--repo", repo, "--env", "dev", "-j", "1").exit_code == 0
    assert check_unchanged(repo, "--env", "dev").exit_code == 0  # includes the retained old version
    assert check_unchanged(repo).exit_code == 1  # prod is still stale
    assert cli("render", "--repo", repo, "-j", "1").exit_code == 0
    assert check_unchanged(repo).exit_code == 0


def test_check_without_out(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    result = cli("check", "--repo", root, "-j", "1")
    assert result.exit_code == 1
    assert "(0 stale, 14 missing, 0 extra)" in result.stdout
    assert not (root / "out").exists()


def test_diff_is_bounded(repo: Path) -> None:
    (repo / "out/dev/web/deployment-web.yaml").unlink()
    result = check_unchanged(repo, "--max-lines", "5")
    lines = result.stdout.splitlines()
    start = lines.index("missing: out/dev/web/deployment-web.yaml")
    assert len([x for x in lines[start + 1:] if x.startswith("    ") and not x.startswith("    ...")]) >= 5
    assert lines[start + 6].startswith("    ... ") and lines[start + 6].endswith(" more diff lines cut")


def test_library_result(repo: Path) -> None:
    (repo / "out/prod/web/service-web.yaml").unlink()
    result = check(Repo.open(repo), ["dev", "prod"], all_envs=True, jobs=1)
    assert not result.ok
    assert [(p.path, p.status) for p in result.problems] == [("out/prod/web/service-web.yaml", "missing")]
    assert result.unchanged == 13


def test_total_bound_lists_every_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    result = check(Repo.open(root), ["dev", "prod"], all_envs=True, jobs=1, limit=1000)
    shown = sum(len(p.diff) for p in result.problems)
    assert shown <= 400 and len(result.problems) == 14
    assert all(p.cut + len(p.diff) > 0 for p in result.problems)


def test_bounded_diff_counts_cut_lines() -> None:
    old = "".join(f"{i}\n" for i in range(50))
    lines, cut = bounded_diff(old, "", "a/x", "/dev/null", 10)
    assert len(lines) == 10 and cut == 53 - 10  # 2 headers + 1 hunk line + 50 removals


def test_fix_command_quotes_and_program_name() -> None:
    assert fix_command("gitops-gen", "my repo", ["dev"]) == "gitops-gen render --repo 'my repo' --env dev"
    assert fix_command("python3 -m generator", None, []) == "python3 -m generator render"
    assert program_name("gitops-gen") == "gitops-gen"
    assert program_name("python -m generator").endswith(" -m generator")


def test_orphaned_envs(tmp_path: Path) -> None:
    (tmp_path / "out/old").mkdir(parents=True)
    (tmp_path / "out/old/a.yaml").write_text("# Generated by gitops-gen from x.\n")
    (tmp_path / "out/docs").mkdir()  # no generated file: not an environment's output
    (tmp_path / "out/docs/README.md").write_text("by hand\n")
    (tmp_path / "out/dev").mkdir()
    assert orphaned_envs(tmp_path / "out", ["dev"]) == ["old"]
    assert orphaned_envs(tmp_path / "out", ["dev", "old"]) == []
    assert orphaned_envs(tmp_path / "missing", []) == []


def test_foreign_file_in_the_way_is_an_error(repo: Path) -> None:
    (repo / "out/dev/web/service-web.yaml").write_text("# written by hand\nkind: Service\n")
    result = check_unchanged(repo)
    assert result.exit_code == 1
    assert "this file was not written by gitops-gen" in result.output
    assert "Traceback" not in result.output
