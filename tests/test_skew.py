"""`gitops-gen skew` on the example: images and ConfigMap keys by lineage, declared values marked."""

from __future__ import annotations

import json
from pathlib import Path

from generator.model import Origin, Resource
from generator.pipeline import RenderedEnv
from generator.review.skew import Cell, Row, _namespace_only, markdown, shown, skew_of, text, to_json
from tests.helpers import run
from tests.test_set import example


def test_json_lists_differences_by_declared_name(tmp_path: Path) -> None:
    repo = example(tmp_path)
    result = run("skew", "--repo", repo, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["schema"] == "gitops-gen.skew/v1" and doc["environments"] == ["dev", "prod", "staging"]
    images = {(d["object"], d["container"]): d for d in doc["differences"] if d["type"] == "image"}
    engine = images[("Deployment/exchange-engine", "engine")]
    assert engine["promotable"] is True
    assert engine["values"]["dev"]["value"] == "ghcr.io/exchange/engine:1.5.0-rc.1"
    processor = images[("Deployment/exchange-db-processor", "db-processor")]
    assert processor["values"]["dev"]["declared"].startswith("environments/dev/env.yaml:")  # an images: entry
    keys = {(d["object"], d["key"]): d for d in doc["differences"] if d["type"] == "config"}
    level = keys[("ConfigMap/exchange-engine-config", "LOG_LEVEL")]  # a lineage, never a hashed name
    assert level["promotable"] is False
    assert level["values"]["prod"] == {"value": "warn", "declared": "environments/prod/env.yaml:10"}
    assert level["values"]["staging"] == {"value": "info", "declared": None}
    assert keys[("ConfigMap/exchange-engine-config", "otel_exporter_endpoint")]["values"]["dev"]["value"] is None
    assert {"app": "engine", "object": "ConfigMap/exchange-engine-config", "key": "redis_url"} in doc["namespaceOnly"]


def test_text_and_markdown(tmp_path: Path) -> None:
    repo = example(tmp_path)
    text = run("skew", "--repo", repo, "--env", "staging", "--env", "prod").output
    assert text.startswith("gitops-gen skew: prod, staging: 0 image differences (0 promotable), 9 ConfigMap key")
    assert "    prod     warn  (declared in environments/prod/env.yaml:16)\n    staging  info\n" in text
    markdown = run("skew", "--repo", repo, "--format", "markdown", "--app", "engine").output
    assert "| App | Object | Item | dev | prod | staging |" in markdown
    assert "| engine | Deployment/exchange-engine | container `engine` | `ghcr.io/exchange/engine:1.5.0-rc.1` |" in markdown
    assert "db-processor" not in markdown


def test_long_values_and_namespace_only() -> None:
    assert shown("x" * 200).startswith("x" * 60 + "... (200 characters, sha256 ")
    assert "(3 lines, sha256" in shown("a\nb\nc\n")
    row = Row("a", "config", "ConfigMap/c", "url", {"dev": Cell("h.ns-dev.svc"), "prod": Cell("h.ns-prod.svc")})
    assert _namespace_only(row, {"dev": "ns-dev", "prod": "ns-prod"})
    row.cells["prod"] = Cell("other.ns-prod.svc")
    assert not _namespace_only(row, {"dev": "ns-dev", "prod": "ns-prod"})


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    assert run("skew", "--repo", example(tmp_path), "--env", "qa").exit_code == 2


def _chart_env(env: str, *labels: str) -> RenderedEnv:
    objects = [Resource({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "labels": {
        "helm.sh/chart": label}}}, Origin("base/shop/app.yaml"), "shop") for i, label in enumerate(labels)]
    return RenderedEnv(env, objects, {})


def test_chart_versions_differ_by_the_helm_chart_label() -> None:
    skew = skew_of({"prod": _chart_env("prod", "shop-1.0.0", "redis-17.0.0"),
                    "staging": _chart_env("staging", "shop-1.1.0", "redis-17.0.0")},
                   {"prod": "environments/prod/", "staging": "environments/staging/"})
    assert [(r.kind, r.app, r.item) for r in skew.rows] == [("chart", "shop", "version")]
    assert skew.rows[0].cells["staging"] == Cell("redis-17.0.0, shop-1.1.0") and not skew.promotable
    report = text(skew)
    assert "1 chart version difference, 0 ConfigMap key differences" in report
    assert "Helm charts\n  shop: Helm chart version\n    prod     redis-17.0.0, shop-1.0.0\n" in report
    assert "| shop | Helm chart | `version` | `redis-17.0.0, shop-1.0.0` |" in markdown(skew)
    assert json.loads(to_json(skew))["differences"][0]["type"] == "chart"
    same = skew_of({"prod": _chart_env("prod", "shop-1.0.0"), "staging": _chart_env("staging", "shop-1.0.0")},
                   {"prod": "environments/prod/", "staging": "environments/staging/"})
    assert not same.rows
