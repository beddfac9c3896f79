import gc

import pytest

from generator.io.heap import long_lived


def test_no_full_collection_inside_and_thresholds_restored() -> None:
    before = gc.get_threshold()
    with long_lived():
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert full > 10**9
        with long_lived():  # nested: still off, and the outer setting comes back
            assert gc.get_threshold()[2] == full
        assert gc.get_threshold()[2] == full
    assert gc.get_threshold() == before


def test_thresholds_restored_on_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError), long_lived():
        raise ValueError("x")
    assert gc.get_threshold() == before


def _collections_while_allocating() -> set[int]:
    generations: set[int] = set()

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.add(info["generation"])

    gc.callbacks.append(seen)
    try:
        kept = [[i] for i in range(300_000)]  # a growing heap of live containers, as a render's
    finally:
        gc.callbacks.remove(seen)
    del kept
    return generations


def test_only_young_generations_are_collected_inside() -> None:
    with long_lived():
        generations = _collections_while_allocating()
    assert 0 in generations  # young collections go on (short-lived cycles are still freed)
    assert 2 not in generations
