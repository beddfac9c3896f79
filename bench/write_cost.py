"""What creating thousands of output files costs, by how they are written (issue 17, item 3).

    python bench/write_cost.py --files 9000 --per-folder 9 --size 2700 --dest /tmp/wc --repeat 3

Writes the same files (random-free, deterministic bytes) into a fresh folder per variant and
round, variants interleaved, and prints CPU (user + system) and wall time per variant:

    plain            open(O_CREAT|O_TRUNC) + write + close                 (the floor's writes)
    tmp+rename       write a temporary name beside the file, rename over it  (atomic per file)
    tmp+fsync+rename the same with fsync of each file before its rename        (durable content)
    tmp+rename+dirsync   tmp+rename, then one fsync per folder at the end      (durable names)
    tmp+fsync+rename+dirsync   both: what survives a power cut
    tmp+rename+syncfs    tmp+rename, then one syncfs(2) of the file system at the end

Folders are created untimed first; nothing is deleted before a timed run (deleting thousands
of files slows the next creations on some file systems). Output goes to --dest, which must not
exist; it is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[list[tuple[str, bytes]], list[str]], None]
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _write_fd(path: str, data: bytes, sync: bool) -> None:
    fd = os.open(path, _FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _tmp(path: str) -> str:
    folder, _, name = path.rpartition("/")
    return f"{folder}/.tmp.{name}"


def plain(files: list[tuple[str, bytes]], folders: list[str]) -> None:
    for path, data in files:
        _write_fd(path, data, False)


def tmp_rename(files: list[tuple[str, bytes]], folders: list[str], sync: bool = False) -> None:
    for path, data in files:
        tmp = _tmp(path)
        _write_fd(tmp, data, sync)
        os.replace(tmp, path)


def tmp_fsync_rename(files: list[tuple[str, bytes]], folders: list[str]) -> None:
    tmp_rename(files, folders, sync=True)


def _sync_folders(folders: list[str]) -> None:
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def tmp_rename_dirsync(files: list[tuple[str, bytes]], folders: list[str]) -> None:
    tmp_rename(files, folders)
    _sync_folders(folders)


def tmp_fsync_rename_dirsync(files: list[tuple[str, bytes]], folders: list[str]) -> None:
    tmp_rename(files, folders, sync=True)
    _sync_folders(folders)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def tmp_rename_syncfs(files: list[tuple[str, bytes]], folders: list[str]) -> None:
    tmp_rename(files, folders)
    fd = os.open(folders[0], os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed")
    finally:
        os.close(fd)


VARIANTS: dict[str, Writer] = {
    "plain": plain,
    "tmp+rename": tmp_rename,
    "tmp+fsync+rename": tmp_fsync_rename,
    "tmp+rename+dirsync": tmp_rename_dirsync,
    "tmp+fsync+rename+dirsync": tmp_fsync_rename_dirsync,
    "tmp+rename+syncfs": tmp_rename_syncfs,
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cost of creating many files, by write method")
    parser.add_argument("--files", type=int, default=9000)
    parser.add_argument("--per-folder", type=int, default=9, help="files per folder (an app's folder)")
    parser.add_argument("--size", type=int, default=2700, help="bytes per file")
    parser.add_argument("--dest", type=Path, required=True, help="scratch folder (must not exist)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if args.dest.exists():
        parser.error(f"{args.dest} exists; give a new folder")
    names = [v for v in args.variants.split(",") if v]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    body = (b"# generated\napiVersion: v1\nkind: ConfigMap\n" + b"data: x\n" * args.size)[: args.size]
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for round_no in range(args.repeat):
        for name in names:
            root = args.dest / f"{round_no}-{name.replace('+', '_')}"
            files: list[tuple[str, bytes]] = []
            folders: list[str] = []
            for i in range(args.files):
                if i % args.per_folder == 0:
                    folders.append(str(root / f"app-{i // args.per_folder:05d}"))
                    os.makedirs(folders[-1])
                files.append((f"{folders[-1]}/file-{i:06d}.yaml", body))
            cpu, wall = _cpu(), time.perf_counter()
            VARIANTS[name](files, folders)
            samples[name].append((_cpu() - cpu, time.perf_counter() - wall))
    print(f"{args.files} files of {args.size} bytes, {args.per_folder} per folder; medians of {args.repeat}")
    print("| variant | CPU (s) | wall (s) | CPU per file (us) | CPU vs plain |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(c for c, _ in samples[names[0]]) if names else 1.0
    for name in names:
        cpu = statistics.median(c for c, _ in samples[name])
        wall = statistics.median(w for _, w in samples[name])
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / args.files * 1e6:.0f} | {cpu / base:.2f}x |")
    if not args.keep:
        shutil.rmtree(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
