import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _memo_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the render memo (generator/memo.py) out of the user's ~/.cache during tests."""
    old = os.environ.get("GITOPS_GEN_CACHE_DIR")
    os.environ["GITOPS_GEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("memo"))
    yield
    if old is None:
        os.environ.pop("GITOPS_GEN_CACHE_DIR", None)
    else:
        os.environ["GITOPS_GEN_CACHE_DIR"] = old


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
