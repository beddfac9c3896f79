"""Reading the repo's files: contained, never blocking, size-checked before reading."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.io.inputs import Refused, TooBig, decode_text, forget_real_paths, inside_repo, probe, read_input
from tests.helpers import BASIC_APP, load_out, run, write_repo


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    forget_real_paths()
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file.txt").write_text("hello\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    return root


def test_a_symlink_inside_the_repo_is_read(repo: Path) -> None:
    (repo / "link.txt").symlink_to("sub/file.txt")
    (repo / "folder").symlink_to("sub")
    assert read_input(repo, repo / "link.txt") == b"hello\n"
    assert read_input(repo, repo / "folder" / "file.txt") == b"hello\n"


@pytest.mark.parametrize("make, reason", [
    (lambda r: (r / "x").symlink_to(r.parent / "outside.txt"), "outside the repo"),
    (lambda r: (r / "x").symlink_to("nowhere"), "which does not exist (a dangling symlink)"),
    (lambda r: ((r / "x").symlink_to("y"), (r / "y").symlink_to("x")), "is a symlink loop"),
    (lambda r: os.mkfifo(r / "x"), "is a FIFO (named pipe)"),
])
def test_refused(repo: Path, make: object, reason: str) -> None:
    make(repo)  # type: ignore[operator]
    with pytest.raises(Refused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_input(repo, repo / "x")


def test_a_folder_on_the_path_leaving_the_repo_is_refused(repo: Path) -> None:
    outside = repo.parent / "elsewhere"
    outside.mkdir()
    (outside / "f.yaml").write_text("a: 1\n")
    (repo / "escape").symlink_to(outside)
    assert not inside_repo(repo, repo / "escape" / "f.yaml")
    with pytest.raises(Refused, match="outside the repo"):
        read_input(repo, repo / "escape" / "f.yaml")


def test_a_socket_is_refused(repo: Path) -> None:
    import socket

    path = repo / "s.yaml"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(Refused, match="is a socket"):
            probe(repo, path)


def test_a_fifo_never_blocks(repo: Path) -> None:
    """Refused by the check, and even when it is missed (swapped in after the check), the open
    does not wait for a writer: the read ends within the test's own time limit."""
    os.mkfifo(repo / "pipe.yaml")
    done = threading.Event()

    def read() -> None:
        with pytest.raises(Refused):
            read_input(repo, repo / "pipe.yaml")
        regular = os.stat(repo / "sub" / "file.txt")
        import generator.io.inputs as inputs

        original = inputs._probe
        inputs._probe = lambda root, path: (regular, False)  # the check sees a regular file
        try:
            with pytest.raises(Refused, match="changed while it was being read"):
                read_input(repo, repo / "pipe.yaml")
        finally:
            inputs._probe = original
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(30)
    assert done.is_set(), "reading a FIFO blocked"


def test_size_is_checked_before_reading(repo: Path) -> None:
    with open(repo / "sparse.bin", "wb") as handle:
        handle.truncate(8 * 1024**3)  # 8 GiB, no disk used
    with pytest.raises(TooBig) as caught:
        read_input(repo, repo / "sparse.bin", 1024 * 1024)
    assert caught.value.size == 8 * 1024**3


def test_a_file_exactly_at_the_limit_is_read(repo: Path) -> None:
    (repo / "edge.txt").write_bytes(b"x" * 1000)
    assert len(read_input(repo, repo / "edge.txt", 1000)) == 1000
    with pytest.raises(TooBig):
        read_input(repo, repo / "edge.txt", 999)


def test_missing_is_none_or_file_not_found(repo: Path) -> None:
    assert probe(repo, repo / "nope") is None
    with pytest.raises(FileNotFoundError):
        read_input(repo, repo / "nope")


@given(st.text())
def test_decode_text_is_read_text(text: str) -> None:
    # Universal newlines, as Path.read_text gives them (the memo keys and line numbers rely on it).
    data = text.encode("utf-8", "surrogatepass")
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert decode_text(data) == expected.replace("\r\n", "\n").replace("\r", "\n")


def test_symlinks_inside_the_repo_render_like_copies(tmp_path: Path) -> None:
    """An app folder, a manifest and a data file reached through symlinks that stay inside the
    repo render exactly as the same files copied there."""
    files = {**BASIC_APP, "shared/web.conf": "listen 80;\n"}
    files["base/web/app.yaml"] = BASIC_APP["base/web/app.yaml"] + "        files: [web.conf]\n"  # type: ignore[operator]
    copied = write_repo(tmp_path / "copied", files)
    shutil.copy(copied / "shared/web.conf", copied / "base/web/web.conf")
    shutil.copytree(copied / "base/web", copied / "base/api")
    (copied / "base/api/deployment.yaml").write_text((copied / "base/web/deployment.yaml").read_text()
                                                     .replace("name: web", "name: api"))
    (copied / "base/api/app.yaml").write_text((copied / "base/web/app.yaml").read_text().replace("web-config", "api-config"))
    linked = tmp_path / "linked"
    shutil.copytree(copied, linked)
    (linked / "base/web/web.conf").unlink()
    (linked / "base/web/web.conf").symlink_to("../../shared/web.conf")
    shutil.move(str(linked / "base/api"), str(linked / "shared/api"))
    (linked / "base/api").symlink_to("../shared/api")
    (linked / "shared/api/web.conf").unlink()
    (linked / "shared/api/web.conf").symlink_to("../web.conf")
    for repo in (copied, linked):
        result = run("render", "--repo", repo)
        assert result.exit_code == 0, result.output
    assert load_out(linked / "out") == load_out(copied / "out")


def test_real_paths_of_folders_are_realpath(tmp_path: Path) -> None:
    """`_real` builds a folder's real path from its parent's; it must agree with `realpath`
    through symlinked folders (inside and leaving the repo), `..`, and missing folders."""
    from generator.io import inputs

    root = tmp_path / "repo"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "elsewhere" / "d").mkdir(parents=True)
    (root / "link").symlink_to("a/b")
    (root / "a" / "out").symlink_to(tmp_path / "elsewhere")
    (root / "a" / "loop").symlink_to("loop")
    forget_real_paths()
    for rel in ("a", "a/b/c", "link", "link/c", "a/out", "a/out/d", "a/out/../a", "link/../b",
                "a/b/c/../../b", "missing/x", "a/missing", "a/loop", "a/b/./c", "."):
        folder = str(root / rel)
        assert inputs._real(folder) == os.path.realpath(folder), rel
    assert not inside_repo(root, root / "a" / "out" / "d" / "f.yaml")
    assert inside_repo(root, root / "link" / "c" / "f.yaml")
