"""`promote --from A --to B`: copy chosen differences of environment A into B's sources.

What is copied:
- `--images` (the default when nothing is chosen): every container image that differs, through
  B's `images:` entry for the image's name (as `set image` does). One entry serves every
  container of that image in B, so a promotion that would also change a container not being
  promoted (another app with the same image, or the same image at two versions in A) is refused
  with the containers named.
- `--config KEY`: the key's value in A for every ConfigMap (declared name) of the chosen apps that
  has it in A, as B's overlay literal (as `set config` does). A value with template syntax is
  wrapped in `{% raw %}`, so B gets the text A rendered.

The edits are checked by rendering B again from the edited sources: every promoted item must
then equal A's. Then out/<B> is rendered and the pull-request body printed: the edits and the
markdown `diff` of B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from generator.edit.commands import Outcome, write_out
from generator.edit.files import Edit, planned, written
from generator.edit.targets import EnvView, plan_config, plan_image
from generator.errors import EditError, TargetError
from generator.pipeline import Repo
from generator.review.skew import Row, skew_of
from generator.steps.images import ImageUse, split
from generator.steps.templating import has_template_syntax


@dataclass
class Promotion:
    source: str
    target: str
    rows: list[Row]  # what is promoted
    outcome: Outcome
    body: str = ""  # the pull-request body (empty for a dry run)


def _rows(source: EnvView, target: EnvView, apps: Sequence[str]) -> list[Row]:
    prefixes = {v.name: f"environments/{v.name}/" for v in (source, target)}
    return list(skew_of({source.name: source.rendered, target.name: target.rendered}, prefixes, apps).rows)


def _image_edits(source: EnvView, target: EnvView, rows: list[Row]) -> list[Edit]:
    wanted: dict[tuple[str, str], str] = {}  # (workload, container) in B -> A's image
    for row in rows:
        if row.kind == "image" and row.promotable:
            wanted[(row.obj, row.item)] = str(row.cells[source.name].value)
    by_name: dict[str, list[ImageUse]] = {}
    for use in target.rendered.images:
        by_name.setdefault(split(use.original)[0], []).append(use)
    edits: list[Edit] = []
    for name, uses in sorted(by_name.items()):
        moving = {(f"{u.kind}/{u.name}", u.container) for u in uses} & set(wanted)
        if not moving:
            continue
        images = {wanted[m] for m in moving}
        staying = [u for u in uses if (f"{u.kind}/{u.name}", u.container) not in wanted]
        if len(images) > 1 or staying:
            raise EditError(
                f"cannot promote image {name} alone: in {target.name} one `images:` entry decides every container "
                f"running it, but {_conflict(images, staying, source.name)}",
                hint="promote the other apps too (--app), or set these images by hand with `gitops-gen set image`")
        edits += plan_image(target, name, images.pop())
    return edits


def _conflict(images: set[str], staying: list[ImageUse], source: str) -> str:
    if len(images) > 1:
        return f"{source} runs it as {', '.join(sorted(images))}"
    return "these containers would change too: " + ", ".join(sorted(f"{u.kind}/{u.name} {u.container}" for u in staying))


def _config_edits(source: EnvView, target: EnvView, rows: list[Row], keys: Sequence[str]) -> list[Edit]:
    edits: list[Edit] = []
    for key in keys:
        found = [r for r in rows if r.kind == "config" and r.item == key]
        for row in found:
            value = row.cells[source.name].value
            if value is None:
                raise EditError(f"{row.obj} has no key {key!r} in {source.name}, but has it in {target.name}",
                                hint="promote copies values; remove the key in the target by hand if that is meant")
            if row.cells[target.name].value is None and not _has(target, row.obj):
                raise EditError(f"{row.obj} does not exist in {target.name}; promote copies keys, not ConfigMaps")
            if value.startswith("(binary, sha256"):
                raise EditError(f"key {key!r} of {row.obj} is binary; promote copies text keys only")
            literal = "{% raw %}" + value + "{% endraw %}" if has_template_syntax(value) else value
            edits += plan_config(target, row.obj.split("/", 1)[1], key, literal)
    return edits


def _has(view: EnvView, obj: str) -> bool:
    kind, _, name = obj.partition("/")
    return any(r.kind == kind and r.declared_name == name for r in view.rendered.resources)


def promote(repo: Repo, source: str, target: str, apps: Sequence[str], images: bool, keys: Sequence[str],
            dry_run: bool) -> Promotion:
    if source == target:
        raise TargetError("--from and --to name the same environment")
    a, b = EnvView.load(repo, source), EnvView.load(repo, target)
    rows = _rows(a, b, apps)
    copy_images = images or not keys
    edits = (_image_edits(a, b, rows) if copy_images else []) + _config_edits(a, b, rows, keys)
    chosen = [r for r in rows if (copy_images and r.promotable) or (r.kind == "config" and r.item in keys)]
    changes = planned(edits)
    promotion = Promotion(source, target, chosen, Outcome(edits, changes))
    if dry_run or not edits:
        return promotion
    from generator.review import diff_report
    from generator.review.diff import diff_repo

    with written(changes):
        _check(repo, a, target, chosen)
        report = diff_repo(repo, [target], False, None)
        promotion.outcome.rendered = write_out(repo, [target])
    promotion.body = pr_body(promotion, diff_report.markdown(report))
    return promotion


def _check(repo: Repo, source: EnvView, target: str, chosen: list[Row]) -> None:
    """Render the edited target again: every promoted item must now equal the source's."""
    after = EnvView.load(repo, target)
    left = [r for r in _rows(source, after, ()) if any((r.obj, r.item) == (c.obj, c.item) for c in chosen)]
    if left:
        raise EditError(f"after the edits, {left[0].obj} {left[0].item} still differs from {source.name}; "
                        "nothing was changed", hint="set it by hand; this is a limit of promote")


def pr_body(promotion: Promotion, diff_markdown: str) -> str:
    lines = [f"## Promote {promotion.source} → {promotion.target}", ""]
    for row in promotion.rows:
        what = f"image of `{row.obj}` container `{row.item}`" if row.kind == "image" else f"`{row.obj}` key `{row.item}`"
        old, new = row.cells[promotion.target].value, row.cells[promotion.source].value
        lines.append(f"- {what}: `{_short(old)}` → `{_short(new)}`")
    lines += ["", "Source edits:", ""]
    lines += [f"- `{e.shown}`: {e.why}" for e in promotion.outcome.edits]
    return "\n".join(lines) + "\n\n" + diff_markdown


def _short(value: str | None) -> str:
    from generator.review.skew import shown

    return shown(value).replace("`", "'")
