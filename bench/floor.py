"""The floor: the least work any renderer of a repo must do, done with libyaml and nothing else.

A renderer has to read and parse its input and emit and write its output. This script does
exactly that and no more, with PyYAML's libyaml bindings (``CSafeLoader``, ``CSafeDumper``), in
one process on one core:

``plan`` (untimed preparation, run once after a real render)::

    python bench/floor.py plan --rendered REPO/out --plan PLAN

    Parses every file under the rendered ``out/`` folder and stores, with ``pickle``, the list of
    (relative path, leading comment lines, documents) to emit. This is how the floor knows *what* to emit without
    rendering anything: the objects come from our own output, so the floor writes the same number
    of files, with the same objects, in the same style (block style, literal blocks for multi-line
    strings, no line wrapping: the options our renderer uses) and the same leading comment lines
    (the renderer's provenance header, stored as text), hence of the same total size.

``run`` (the timed part)::

    python bench/floor.py run --repo REPO --plan PLAN --dest DEST

    1. Input: walks REPO (skipping ``out/`` and names starting with ``.`` or ``_``, as the
       renderer does), reads every file, and parses every ``*.yaml``/``*.yml`` file completely
       with ``yaml.load_all(..., Loader=CSafeLoader)``; any other file (a data file such as
       ``app.properties``) is read and decoded as UTF-8, as a ConfigMap source is.
    2. Output: loads PLAN (``pickle``, tens of milliseconds at 1,000 apps) and, for every planned
       file, dumps its documents with ``CSafeDumper`` and writes the stored comment lines plus
       that text to DEST/<relative path> (folders created as needed). DEST should not exist or
       be empty; nothing is deleted.
    3. Prints one line: ``floor: read=<files> <bytes> parsed=<docs> wrote=<files> <bytes>``.

No templating, merging, hashing, reference rewriting, validation or comparison happens: any
real renderer must do at least this much, so ``ours / floor`` is the overhead of everything else.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import yaml

_Loader: Any = yaml.CSafeLoader
_BaseDumper: Any = yaml.CSafeDumper


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """libyaml emitter; multi-line strings as literal blocks (the renderer's output style)."""


def _represent_str(dumper: Any, data: str) -> Any:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)

_DUMP_OPTIONS: dict[str, Any] = {
    "Dumper": _Dumper,
    "default_flow_style": False,
    "sort_keys": False,
    "allow_unicode": True,
    "width": 1_000_000,
}

Plan = list[tuple[str, str, list[Any]]]  # (relative path, leading comment lines, documents)


def _skipped(name: str) -> bool:
    return name.startswith((".", "_"))


def read_inputs(repo: Path) -> tuple[int, int, int]:
    """Read and parse every input file of ``repo``; returns (files, bytes, YAML documents)."""
    files = size = docs = 0
    top = os.path.realpath(repo)
    for folder, dirnames, filenames in os.walk(top):
        if folder == top:
            dirnames[:] = [d for d in dirnames if d != "out" and not _skipped(d)]
        else:
            dirnames[:] = [d for d in dirnames if not _skipped(d)]
        dirnames.sort()
        for name in sorted(filenames):
            if _skipped(name):
                continue
            with open(os.path.join(folder, name), "rb") as handle:
                raw = handle.read()
            files += 1
            size += len(raw)
            text = raw.decode("utf-8")
            if name.endswith((".yaml", ".yml")):
                docs += sum(1 for d in yaml.load_all(text, Loader=_Loader) if d is not None)
    return files, size, docs


def _leading_comments(text: str) -> str:
    """The comment lines a file starts with (the renderer's provenance header), kept verbatim."""
    end = 0
    while text.startswith("#", end):
        newline = text.find("\n", end)
        end = len(text) if newline < 0 else newline + 1
    return text[:end]


def make_plan(rendered: Path) -> Plan:
    """Every file under ``rendered`` (relative path, documents), in a stable order."""
    plan: Plan = []
    for folder, dirnames, filenames in os.walk(rendered):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
            plan.append((os.path.relpath(path, rendered), _leading_comments(text), documents))
    return plan


def emit(plan: Plan, dest: Path) -> tuple[int, int]:
    """Dump and write every planned file under ``dest``; returns (files, bytes)."""
    made: set[str] = set()
    files = size = 0
    for rel, header, documents in plan:
        target = os.path.join(dest, rel)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if len(documents) == 1:
            text = yaml.dump(documents[0], **_DUMP_OPTIONS)
        else:
            text = yaml.dump_all(documents, **_DUMP_OPTIONS)
        data = (header + text).encode("utf-8")
        with open(target, "wb") as handle:
            handle.write(data)
        files += 1
        size += len(data)
    return files, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="libyaml parse-plus-emit floor (see the module docstring)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_plan = sub.add_parser("plan", help="record what to emit, from a rendered out/ folder (untimed)")
    p_plan.add_argument("--rendered", type=Path, required=True, help="a rendered out/ folder")
    p_plan.add_argument("--plan", type=Path, required=True, help="file to write the plan to")
    p_run = sub.add_parser("run", help="read+parse the repo's inputs, emit+write the planned output (timed)")
    p_run.add_argument("--repo", type=Path, required=True)
    p_run.add_argument("--plan", type=Path, required=True)
    p_run.add_argument("--dest", type=Path, required=True, help="folder to write the output into")
    args = parser.parse_args(argv)

    if args.command == "plan":
        if not args.rendered.is_dir():
            parser.error(f"{args.rendered} is not a folder")
        plan = make_plan(args.rendered)
        with open(args.plan, "wb") as handle:
            pickle.dump(plan, handle, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"floor plan: {len(plan)} files from {args.rendered}")
        return 0

    read_files, read_bytes, parsed = read_inputs(args.repo)
    with open(args.plan, "rb") as handle:
        plan = pickle.load(handle)
    wrote_files, wrote_bytes = emit(plan, args.dest)
    print(f"floor: read={read_files} {read_bytes} parsed={parsed} wrote={wrote_files} {wrote_bytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
