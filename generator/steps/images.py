"""Step: the `images:` entries of app.yaml and env.yaml, like Kustomize's images transformer.

An entry names an image (no tag, no digest) and says what to put instead: `newName`, `newTag`
and/or `digest`. Every container, initContainer and ephemeralContainer of every pod spec
(built-in kinds and `podSpecPaths`) whose image has that name is rewritten. The rules are
Kustomize's (sigs.k8s.io/kustomize/api/image, v5: `IsImageMatched`, `Split`, and
`ImageTagUpdater.SetImageValue`), checked against `kubectl kustomize` in tests/test_images.py:

- match: the image is the name itself, optionally followed by `:TAG` (tag characters
  `[a-zA-Z0-9_.{}-]`) and/or `@sha256:DIGEST`. So `nginx` matches `nginx`, `nginx:1.27` and
  `nginx@sha256:...`, never `docker.io/nginx` or `nginx-exporter`; a registry with a port
  (`localhost:5000/app`) is part of the name. (Kustomize puts the name into a regular
  expression unescaped, so a `.` there matches any character; ours is matched literally.)
- split: the tag is what follows the first `:` after the first `/` (so a registry port is never
  a tag), the digest what follows `@`.
- update: `newName` replaces the name; `newTag` alone replaces tag and drops a digest; `digest`
  alone replaces the digest and drops the tag; both set both.

Which entries apply to an app: its app.yaml entries (base, then `environments/<env>/apps/<app>/`),
then the environment's, the later replacing an earlier one of the same `name` (as `vars` do).
An entry that matches no container of its scope is an error: a typo would silently do nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.errors import ConfigError
from generator.hints import close_matches
from generator.model import Origin, Resource
from generator.steps.references import CONTAINER_LISTS, FieldPath, pod_spec_path

if TYPE_CHECKING:
    from generator.config import PodSpecPath
    from generator.schema import Doc, Path_

ENTRY_KEYS = ("name", "newName", "newTag", "digest")
# The OCI distribution spec's grammar for a tag and a digest.
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
# What may follow the name in a matching image (kustomize v5 `IsImageMatched`).
_SUFFIX = r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?\Z"


@dataclass(frozen=True)
class ImageEntry:
    """One `images:` entry: the image name to match and what replaces which part."""

    name: str
    new_name: str | None
    new_tag: str | None
    digest: str | None
    origin: Origin  # the entry in its file (path ("images", i))
    scope: str  # "app" or "env"

    def matches(self, image: str) -> bool:
        return matches(image, self.name)

    def apply(self, image: str) -> str:
        return apply(image, self.new_name, self.new_tag, self.digest)

    def describe(self) -> str:
        return f"images: {self.name} ({self.origin})"


def split(image: str) -> tuple[str, str, str]:
    """`[host[:port]/]path[:tag][@digest]` -> (name, tag, digest), as kustomize's `image.Split`."""
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    search = image[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (at < colon or colon < 0):
        return image[: offset + at], "", image[offset + at + 1 :]
    if at >= 0:
        return image[: offset + colon], image[offset + colon + 1 : offset + at], image[offset + at + 1 :]
    return image[: offset + colon], image[offset + colon + 1 :], ""


def join(name: str, tag: str, digest: str) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def matches(image: str, name: str) -> bool:
    """Whether `image` is the image `name` with any tag and/or digest (kustomize's rule)."""
    return image.startswith(name) and re.match(_SUFFIX, image[len(name):]) is not None


def apply(image: str, new_name: str | None, new_tag: str | None, digest: str | None) -> str:
    """The image after an entry's update (kustomize's `SetImageValue`)."""
    name, tag, old_digest = split(image)
    if new_name:
        name = new_name
    if new_tag and digest:
        tag, old_digest = new_tag, digest
    elif new_tag:
        tag, old_digest = new_tag, ""
    elif digest:
        tag, old_digest = "", digest
    return join(name, tag, old_digest)


# ---------------------------------------------------------------- reading entries


def parse_entries(doc: Doc, value: Any, origin: Origin, scope: str) -> tuple[ImageEntry, ...]:
    """The `images:` list of app.yaml or env.yaml, checked (origin: the file's, path ())."""
    from generator.schema import expect, mapping

    entries: dict[str, ImageEntry] = {}
    for i, item in enumerate(expect(doc, ("images",), value, list)):
        p: Path_ = ("images", i)
        entry = mapping(doc, p, item, ENTRY_KEYS)
        if "name" not in entry:
            raise doc.error(p, "an `images:` entry needs a `name`",
                            hint="e.g. {name: ghcr.io/exchange/engine, newTag: \"1.5.0\"}")
        fields = {k: _text(doc, p + (k,), entry[k]) for k in ENTRY_KEYS if k in entry}
        _check_entry(doc, p, fields)
        name = fields["name"]
        if name in entries:
            raise doc.error(p + ("name",), f"image {name!r} has two `images:` entries in this file "
                            f"(the first at line {entries[name].origin.line})")
        entries[name] = ImageEntry(name, fields.get("newName"), fields.get("newTag"), fields.get("digest"),
                                   origin.at(*p), scope)
    return tuple(entries.values())


def _text(doc: Doc, path: Path_, value: Any) -> str:
    if not isinstance(value, str) or not value:
        got = "nothing" if value is None else ("an empty string" if value == "" else type(value).__name__)
        raise doc.error(path, f"expected a non-empty string, got {got}",
                        hint='quote tags that look like numbers: newTag: "1.20" (YAML reads 1.20 as 1.2)')
    return value


def _check_entry(doc: Doc, p: Path_, fields: Mapping[str, str]) -> None:
    if not any(k in fields for k in ("newName", "newTag", "digest")):
        raise doc.error(p, f"images entry {fields['name']!r} changes nothing",
                        hint="give newName, newTag and/or digest")
    for key in ("name", "newName"):
        if key in fields and split(fields[key])[0] != fields[key]:
            name, tag, digest = split(fields[key])
            extra = f"tag {tag!r}" if tag else f"digest {digest!r}"
            raise doc.error(p + (key,), f"{fields[key]!r} carries a {extra}",
                            hint=f"write `{key}: {name}` and put the {'tag in newTag' if tag else 'digest in digest'}")
    if "newTag" in fields and not _TAG.match(fields["newTag"]):
        raise doc.error(p + ("newTag",), f"{fields['newTag']!r} is not a valid image tag",
                        hint="a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
    if "digest" in fields and not _DIGEST.match(fields["digest"]):
        raise doc.error(p + ("digest",), f"{fields['digest']!r} is not a digest",
                        hint="write it as sha256:<64 hex digits>, without the image name or '@'")


# ---------------------------------------------------------------- the step


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One container's image in a rendered environment: as written, after `images:`, and why."""

    app: str
    kind: str
    name: str  # the workload's name
    namespace: str | None
    container_list: str  # containers, initContainers or ephemeralContainers
    container: str
    path: FieldPath  # from the object's root to the image field
    original: str
    final: str
    entry: ImageEntry | None


def containers(obj: dict[str, Any], spec_path: FieldPath) -> Iterator[tuple[str, dict[str, Any], FieldPath]]:
    """(container list, container, path of the container) of one pod spec."""
    pod: Any = obj
    for step in spec_path:
        pod = pod.get(step) if isinstance(pod, dict) else None
    if not isinstance(pod, dict):
        return
    for list_name in CONTAINER_LISTS:
        items = pod.get(list_name)
        for i, c in enumerate(items if isinstance(items, list) else []):
            if isinstance(c, dict) and isinstance(c.get("image"), str):
                yield list_name, c, spec_path + (list_name, i)


def effective(app_entries: Iterable[ImageEntry], env_entries: Iterable[ImageEntry]) -> dict[str, ImageEntry]:
    """Image name -> the entry that decides it for one app: later entries replace earlier ones."""
    out: dict[str, ImageEntry] = {}
    for entry in (*app_entries, *env_entries):
        out[entry.name] = entry
    return out


def _find(image: str, entries: Mapping[str, ImageEntry]) -> ImageEntry | None:
    # Names carry no tag, so the name is the image up to its tag/digest (or the whole image).
    entry = entries.get(split(image)[0])
    return entry if entry is not None and entry.matches(image) else None


def images_step(
    resources: Sequence[Resource],
    app_entries: Mapping[str, Sequence[ImageEntry]],
    env_entries: Sequence[ImageEntry],
    specs: Sequence[PodSpecPath],
    env: str,
    others: Mapping[str, Mapping[str, set[str]]] | None = None,
) -> list[ImageUse]:
    """Rewrite matching images in place; return every container's image with its deciding entry.

    `app_entries`: app -> that app's entries. An entry matching no container is an error.
    `others`: the images of apps not rendered this time (generator/incremental.py)."""
    uses: list[ImageUse] = []
    decided = {app: effective(entries, env_entries) for app, entries in app_entries.items()}
    env_only = effective((), env_entries)
    seen: dict[str, dict[str, set[str]]] = {}  # app -> image name -> images of its containers (before `images:`)
    for r in resources:
        spec_path = pod_spec_path(r.obj, specs)
        if spec_path is None:
            continue
        entries = decided.get(r.app, env_only)
        images = seen.setdefault(r.app, {})
        for list_name, container, cpath in containers(r.obj, spec_path):
            original = container["image"]
            images.setdefault(split(original)[0], set()).add(original)
            entry = _find(original, entries) if entries else None
            final = original
            if entry is not None:
                final = container["image"] = entry.apply(original)
            uses.append(ImageUse(r.app, r.kind, r.name, r.namespace, list_name, str(container.get("name", "")),
                                 cpath + ("image",), original, final, entry))
    _check_unused(app_entries, env_entries, {**(others or {}), **seen}, env)
    return uses


def _check_unused(
    app_entries: Mapping[str, Sequence[ImageEntry]], env_entries: Sequence[ImageEntry],
    seen: Mapping[str, Mapping[str, set[str]]], env: str,
) -> None:
    everything: dict[str, set[str]] = {}
    for images in seen.values():
        for name, found in images.items():
            everything.setdefault(name, set()).update(found)
    for app, entries in app_entries.items():
        for entry in entries:
            _require_match(entry, seen.get(app, {}), f"app {app!r} in environment {env!r}")
    for entry in env_entries:
        _require_match(entry, everything, f"environment {env!r}")


def _require_match(entry: ImageEntry, images: Mapping[str, set[str]], where: str) -> None:
    """`images`: image name -> the images of that name in the entry's scope."""
    if any(entry.matches(image) for image in images.get(entry.name, ())):
        return
    names = sorted(images)
    guess = close_matches(entry.name, names, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    hint += f"images of {where}: {', '.join(names) or '(none)'} (a name carries no tag or digest)"
    raise ConfigError(f"images entry {entry.name!r} matches no container of {where}",
                      file=entry.origin.file, line=entry.origin.line, hint=hint)
