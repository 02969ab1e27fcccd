"""The committed figures: each from the full mode, recorded in figures/data/manifest.json (fast: reads files).

A figure drawn before the manifest existed is listed in PENDING with the reason; once it is redrawn (and so
gains a manifest entry) the test fails until it is removed from PENDING, so the list can only shrink.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

FIGURES = Path(__file__).resolve().parents[1] / "figures"
MANIFEST = FIGURES / "data" / "manifest.json"
REDRAW = "python figures/make_figures.py --only {name}"

#: Committed figures without a manifest entry yet, and why (each drawn in full mode by an earlier run).
PENDING: dict[str, str] = {}


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text())["figures"] if MANIFEST.is_file() else {}


def test_every_manifest_entry_is_from_the_full_mode():
    for name, entry in _manifest().items():
        assert entry["mode"] == "full", f"{name}.png is from {entry['mode']} mode: redraw with {REDRAW}"
        assert entry["settings"]["mode"] == "full" and entry["wall_s"] >= 0 and entry["machine"]["cpus"] >= 1
        assert entry["commit"], name


@pytest.mark.parametrize("png", sorted(p.stem for p in FIGURES.glob("*.png")))
def test_every_committed_figure_has_a_full_manifest_entry(png):
    manifest = _manifest()
    if png in PENDING:
        assert png not in manifest, f"{png} has been redrawn: remove it from PENDING"
        return
    assert png in manifest, f"{png}.png has no manifest entry: redraw it with {REDRAW.format(name=png)}"
    assert manifest[png]["mode"] == "full"
    assert (FIGURES / "data" / f"{png}.csv").is_file(), f"{png}.png has no numbers in data/{png}.csv"
