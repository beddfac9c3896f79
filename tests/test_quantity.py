"""Quantities parsed as the API server parses them (generator/steps/quantity.py), checked against
a real kubectl: `kubectl set resources --local` parses its argument with resource.ParseQuantity."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.steps.quantity import parse, value_of
from tests.kubectl import find_kubectl

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: q}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i}]
"""


@pytest.mark.parametrize(("text", "value"), [
    ("1G", Fraction(10**9)), ("1Gi", Fraction(2**30)), ("500m", Fraction(1, 2)), ("1e3", Fraction(1000)),
    ("1E3", Fraction(1000)), ("1E", Fraction(10**18)), ("0.5", Fraction(1, 2)), ("+.5", Fraction(1, 2)),
    ("1.", Fraction(1)), ("1e+3", Fraction(1000)), ("1e-3", Fraction(1, 1000)), ("08544", Fraction(8544)),
    ("100n", Fraction(1, 10**7)), ("2Ki", Fraction(2048)), ("-1", Fraction(-1)),
    # Quirks of parseQuantityString, kept: a lone sign or dot is zero.
    ("-", Fraction(0)), (".", Fraction(0)),
    # Refused.
    ("1GB", None), ("1gi", None), ("1K", None), ("1 Gi", None), (" 1", None), ("1e", None), ("1Ki3", None),
    ("1e3m", None), ("0x10", None), ("1_000", None), ("", None), ("Infinity", None), ("1.5.5", None), ("1mi", None),
])
def test_parse(text: str, value: Fraction | None) -> None:
    assert parse(text) == value


def test_huge_values_are_capped_like_parse_quantity() -> None:
    assert parse("1e40") == Fraction(2**63 - 1)
    assert parse("1e9223372036854775808") is None  # the exponent is not an int64


def test_numbers_from_yaml_are_quantities() -> None:
    assert value_of(2) == 2 and value_of(0.25) == Fraction(1, 4) and value_of("250m") == Fraction(1, 4)
    assert value_of(True) is None and value_of(None) is None and value_of(float("nan")) is None


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "m", "k", "M", "Ki", "Mi", "Gi", "e2"]))
def test_suffix_multiplies(n: int, suffix: str) -> None:
    factor = {"": 1, "m": Fraction(1, 1000), "k": 1000, "M": 10**6, "Ki": 1024, "Mi": 2**20, "Gi": 2**30, "e2": 100}[suffix]
    assert parse(f"{n}{suffix}") == n * factor


def _kubectl_accepts(kubectl: Path, manifest: Path, text: str) -> bool:
    result = subprocess.run(
        [str(kubectl), "set", "resources", "--local", "-f", str(manifest), f"--limits=memory={text}", "-o", "name"],
        capture_output=True, text=True, timeout=30,
    )
    return result.returncode == 0


# Strings around the edges of the grammar (a giant exponent is left out: kubectl takes minutes on it).
EDGES = ["1G", "1GB", "1Gi", "1gi", "500m", "1e3", "1E", "1e", "-", ".", "1.", "+.5", "-.5e-2", "1E-2", "1Ki3",
         "1e3m", "0x10", "1_000", "08544", "1.G", "1..", "e3", "Ki", "1K", "1Ei", "1u", "1i", "12e09", "3+", "1,5"]


def test_kubectl_agrees_on_edge_cases(tmp_path: Path) -> None:
    kubectl = find_kubectl()
    manifest = tmp_path / "q.yaml"
    manifest.write_text(DEPLOYMENT)
    disagree = [t for t in EDGES if _kubectl_accepts(kubectl, manifest, t) != (parse(t) is not None)]
    assert disagree == []


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789.+-eEinumkKMGTPB", min_size=1, max_size=6))
def test_kubectl_agrees_on_random_strings(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    digits = text.lstrip("+-.0123456789")
    if digits[:1] in ("e", "E") and len(digits.lstrip("eE+-")) > 3:
        return  # a long exponent: kubectl may spin on it
    manifest = tmp_path_factory.mktemp("q") / "q.yaml"
    manifest.write_text(DEPLOYMENT)
    assert _kubectl_accepts(find_kubectl(), manifest, text) == (parse(text) is not None), text
