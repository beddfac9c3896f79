"""difflib, imported only when a message needs a suggestion or a diff (it is not on a good
render's path, and every module loaded costs every render memory)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def close_matches(word: str, possibilities: Sequence[str], n: int = 3) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, possibilities, n=n)


def unified_diff(a: Sequence[str], b: Sequence[str], fromfile: str = "", tofile: str = "", lineterm: str = "\n",
                 n: int = 3) -> Iterator[str]:
    import difflib

    return difflib.unified_diff(a, b, fromfile=fromfile, tofile=tofile, lineterm=lineterm, n=n)
