import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _memo_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the render memo (generator/memo.py) out of the user's ~/.cache during tests, and its
    key out of ~/.config."""
    old = {name: os.environ.get(name) for name in ("GITOPS_GEN_CACHE_DIR", "XDG_CONFIG_HOME")}
    os.environ["GITOPS_GEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("memo"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _helm_for_the_example() -> None:
    """The shipped example has a Helm chart, so every test that renders it needs Helm: fetch
    the pinned one into the cache once (tests/helm.py), whatever order tests run in."""
    from generator.charts import binaries
    from tests.helm import X86_64_LINUX

    if not os.environ.get("GITOPS_GEN_HELM") and X86_64_LINUX:
        binaries.download(["helm"])


@pytest.fixture(autouse=True, scope="session")
def _no_flush_to_disk() -> Iterator[None]:
    """Renders in tests skip flushing out/ to disk (write.FSYNC_ENV): what a flush protects
    against (power loss) cannot happen to a test's temporary folder, and on a busy disk each
    flush costs seconds. tests/test_write_faults.py checks the flushes' order on its own."""
    old = os.environ.get("GITOPS_GEN_FSYNC")
    os.environ["GITOPS_GEN_FSYNC"] = "off"
    yield
    if old is None:
        os.environ.pop("GITOPS_GEN_FSYNC", None)
    else:
        os.environ["GITOPS_GEN_FSYNC"] = old
