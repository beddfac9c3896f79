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
