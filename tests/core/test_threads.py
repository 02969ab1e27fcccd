"""torch_threads and seeded_global_rng across Python threads (joblib's threading backend runs estimators so).

The thread count asked for holds until the last thread leaves and is then restored; nested blocks restore
the enclosing count; a seeded draw gives the same numbers whatever another thread seeds meanwhile.
"""
from __future__ import annotations

import threading

import torch

from infoplane._core.threads import seeded_global_rng, torch_threads


def test_nested_blocks_restore_the_enclosing_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
        with torch_threads(None):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_count_holds_until_the_last_thread_leaves():
    before = torch.get_num_threads()
    inside, leave_first, seen = threading.Event(), threading.Event(), []

    def first():
        with torch_threads(1):
            inside.set()
            leave_first.wait(5)

    t = threading.Thread(target=first)
    t.start()
    inside.wait(5)
    with torch_threads(1):
        leave_first.set()
        t.join(5)
        seen.append(torch.get_num_threads())  # the first thread has left; this one still asks for 1
    assert seen == [1] and torch.get_num_threads() == before


def test_seeded_draws_do_not_depend_on_other_threads():
    with seeded_global_rng(7):
        expected = torch.randn(1000)
    results = []

    def draw():
        with seeded_global_rng(7):
            results.append(torch.randn(1000))

    def reseed():
        for s in range(200):
            with seeded_global_rng(s):
                torch.randn(10)

    threads = [threading.Thread(target=draw) for _ in range(4)] + [threading.Thread(target=reseed) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(torch.equal(r, expected) for r in results)
