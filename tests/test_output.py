from pathlib import Path

import pytest

from generator.io.output import KUSTOMIZATION, Files, kustomization
from generator.model import Origin, Resource


def _files() -> Files:
    objects = [Resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {"k": "v\n" * i}},
                        Origin(f"base/app/c{i}.yaml"), "app") for i in range(3)]
    files = Files({f"app/configmap-c{i}.yaml": r for i, r in enumerate(objects)})
    files.add(KUSTOMIZATION, kustomization(list(files)))
    return files


def test_settled_files_read_their_texts_back_from_the_folder(tmp_path: Path) -> None:
    """Once out/<env>/ holds the files, `settle` lets go of the objects; every text still reads
    the same (from the folder), in the same order, and stands for itself as a text given as text."""
    files = _files()
    texts = dict(files)
    for path, text in texts.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    files.settle(tmp_path)
    assert all(isinstance(files.source(p), str) for p in files)
    assert list(files) == list(texts) and len(files) == len(texts) and dict(files) == texts
    assert [files.exact(p)[0] for p in files] == list(texts.values())
    rest = files.without(KUSTOMIZATION)
    assert dict(rest) == {p: t for p, t in texts.items() if p != KUSTOMIZATION}
    (tmp_path / "app/configmap-c1.yaml").unlink()
    with pytest.raises(KeyError):
        files["app/configmap-c1.yaml"]


def test_texts_given_as_text_are_kept_when_settled(tmp_path: Path) -> None:
    files = _files()
    kept = files[KUSTOMIZATION]
    files.settle(tmp_path)  # nothing written there: only the objects' texts are read back
    assert files[KUSTOMIZATION] == kept
    with pytest.raises(KeyError):  # the objects' texts come from the folder, empty here
        files["app/configmap-c0.yaml"]
