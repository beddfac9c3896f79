"""Reading chart files contained and bounded (generator/charts/source.py), without Helm: what
Helm would follow or unpack is refused first, with the file (or archive member) named."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from generator.charts import source
from generator.errors import ChartError


def chart_folder(repo: Path) -> Path:
    chart = repo / "base/web/chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates/cm.yaml").write_text("kind: ConfigMap\n")
    return chart


def load(repo: Path, chart: Path) -> source.Chart:
    chart = source.load(repo, chart, chart.relative_to(repo).as_posix())
    chart.check()
    return chart


def refused(repo: Path, chart: Path) -> ChartError:
    with pytest.raises(ChartError) as caught:
        load(repo, chart)
    return caught.value


def test_a_folder_is_read_with_its_files_named_as_helm_names_them(tmp_path: Path) -> None:
    chart = load(tmp_path, chart_folder(tmp_path))
    assert [name for name, _ in chart.files] == ["chart/Chart.yaml", "chart/templates/cm.yaml", "chart/values.yaml"]
    assert chart.name() == "web" and chart.default_values() == "replicas: 1\n"


def test_symlinks_inside_the_repo_are_followed_like_helm_follows_them(tmp_path: Path) -> None:
    plain = load(tmp_path / "a", chart_folder(tmp_path / "a"))
    repo = tmp_path / "b"
    folder = chart_folder(repo)
    (repo / "shared").mkdir()
    (folder / "templates/cm.yaml").rename(repo / "shared/cm.yaml")
    (folder / "templates/cm.yaml").symlink_to("../../../../shared/cm.yaml")
    linked = load(repo, folder)
    assert linked.digest == plain.digest and linked.files == plain.files
    repo = tmp_path / "c"
    folder = chart_folder(repo)
    (folder / "templates").rename(repo / "templates")
    (folder / "templates").symlink_to(repo / "templates")  # a folder, absolute, inside the repo
    assert load(repo, folder).digest == plain.digest


def test_a_symlink_leaving_the_repo_is_refused_before_reading(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = chart_folder(repo)
    (tmp_path / "secret.yaml").write_text("kind: Secret\n")
    (folder / "templates/stolen.yaml").symlink_to(tmp_path / "secret.yaml")
    error = refused(repo, folder)
    assert error.file == "base/web/chart/templates/stolen.yaml"
    assert "is a symlink to" in error.message and "outside the repo" in error.message
    assert "Helm would follow it" in (error.hint or "")


def test_a_folder_symlinked_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = chart_folder(repo)
    (tmp_path / "elsewhere").mkdir()
    (folder / "files").symlink_to(tmp_path / "elsewhere")
    assert refused(repo, folder).file == "base/web/chart/files"


@pytest.mark.parametrize("kind", ["fifo", "dangling", "file_loop", "folder_loop"])
def test_fifos_dangling_links_and_loops_are_refused(tmp_path: Path, kind: str) -> None:
    folder = chart_folder(tmp_path)
    if kind == "fifo":
        os.mkfifo(folder / "templates/pipe.yaml")
        where, what = "templates/pipe.yaml", "is a FIFO (named pipe)"
    elif kind == "dangling":
        (folder / "values.yaml").unlink()
        (folder / "values.yaml").symlink_to("gone.yaml")
        where, what = "values.yaml", "which does not exist (a dangling symlink)"
    elif kind == "file_loop":
        (folder / "templates/a.yaml").symlink_to("b.yaml")
        (folder / "templates/b.yaml").symlink_to("a.yaml")
        where, what = "templates/a.yaml", "is a symlink loop"
    else:
        (folder / "templates/again").symlink_to("..")
        where, what = "templates/again", "is a symlink loop"
    error = refused(tmp_path, folder)
    assert error.file == f"base/web/chart/{where}"
    assert what in error.message


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_a_chart_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    folder = chart_folder(tmp_path)
    _sparse(folder / "templates/huge.yaml", source.MAX_CHART_FILE_BYTES + 1)  # no disk used
    error = refused(tmp_path, folder)
    assert error.file == "base/web/chart/templates/huge.yaml" and "over the limit of 16,777,216 bytes" in error.message


def test_a_chart_over_the_limit_in_all_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_CHART_BYTES", 100)
    folder = chart_folder(tmp_path)
    (folder / "templates/more.yaml").write_text("x" * 80)
    error = refused(tmp_path, folder)
    assert "the chart is over the limit" in error.message and error.file.startswith("base/web/chart/")


def test_an_archive_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    archive = tmp_path / "chart.tgz"
    _sparse(archive, source.MAX_CHART_BYTES + 1)
    error = refused(tmp_path, archive)
    assert error.file == "chart.tgz"
    assert error.message.startswith(f"a packaged chart is {source.MAX_CHART_BYTES + 1:,} bytes, over the limit")


def tgz(*members: tarfile.TarInfo, data: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in {"web/Chart.yaml": b"name: web\n", **(data or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for member in members:
            tar.addfile(member, io.BytesIO(b"\0" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


@pytest.mark.parametrize(("bad", "problem"), [
    (member("web/templates/x.yaml", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link (to '/etc/passwd')"),
    (member("web/templates/x.yaml", tarfile.LNKTYPE, "web/Chart.yaml"), "is a hard link (to 'web/Chart.yaml')"),
    (member("web/../../x.yaml"), "climbs out of the chart with '..'"),
    (member("/etc/cron.d/x"), "has an absolute path"),
    (member("C:/Windows/x"), "has an absolute path"),
    (member("web/templates/pipe", tarfile.FIFOTYPE), "is a device, FIFO or other special file"),
    (member("web/templates/dev", tarfile.CHRTYPE), "is a device, FIFO or other special file"),
    (member("web/templates/huge.yaml", size=source.MAX_CHART_FILE_BYTES + 1),
     "is 16,777,217 bytes, over the limit of 16,777,216 bytes for a chart file"),
])
def test_archive_members_that_are_not_plain_files_are_refused(tmp_path: Path, bad: tarfile.TarInfo, problem: str) -> None:
    (tmp_path / "web-1.0.0.tgz").write_bytes(tgz(bad))
    error = refused(tmp_path, tmp_path / "web-1.0.0.tgz")
    assert error.message == f"member {bad.name!r} of web-1.0.0.tgz {problem}"
    assert error.file == "web-1.0.0.tgz" and "helm package" in (error.hint or "")


def test_a_bad_member_of_a_packaged_subchart_is_refused_too(tmp_path: Path) -> None:
    sub = tgz(member("sub/templates/x.yaml", tarfile.SYMTYPE, "../../../../etc/shadow"))
    (tmp_path / "web-1.0.0.tgz").write_bytes(tgz(data={"web/charts/sub-0.1.0.tgz": sub}))
    error = refused(tmp_path, tmp_path / "web-1.0.0.tgz")
    assert "member 'sub/templates/x.yaml' of web-1.0.0.tgz (member web/charts/sub-0.1.0.tgz) is a symbolic link" \
        in error.message


def test_an_archive_bomb_of_empty_members_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_CHART_BYTES", 100 * 512)
    (tmp_path / "web.tgz").write_bytes(tgz(*(member(f"web/f{i}") for i in range(200))))
    assert "the chart is over the limit of 51,200 bytes" in refused(tmp_path, tmp_path / "web.tgz").message


def test_a_file_that_is_not_an_archive_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "web.tgz").write_bytes(b"\x1f\x8b not really gzip")
    error = refused(tmp_path, tmp_path / "web.tgz")
    assert error.message.startswith("web.tgz is not a readable chart archive")


def test_directories_in_an_archive_are_fine(tmp_path: Path) -> None:
    (tmp_path / "web.tgz").write_bytes(tgz(member("web/templates", tarfile.DIRTYPE),
                                           data={"web/templates/cm.yaml": b"kind: ConfigMap\n"}))
    assert [n for n, _ in load(tmp_path, tmp_path / "web.tgz").templates()] == ["web/templates/cm.yaml"]
