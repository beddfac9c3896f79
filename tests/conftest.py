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
