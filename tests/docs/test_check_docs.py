"""scripts/check_docs.py's link check finds what is broken on a small built site (no browser needed)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("check_docs", ROOT / "scripts" / "check_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_broken_links_are_found_and_good_ones_pass(tmp_path):
    site = tmp_path / "html"
    (site / "guide").mkdir(parents=True)
    (site / "_static").mkdir()
    (site / "index.html").write_text(
        '<h1 id="top">t</h1><a href="guide/a.html#sec">ok</a><a href="guide/a.html#nope">bad fragment</a>'
        '<a href="missing.html">missing</a><img src="_static/logo.png"><a href="https://example.org/x">ext</a>'
        '<a href="#top">self</a><a href="../outside.html">outside</a>')
    (site / "guide" / "a.html").write_text('<section id="sec"><a href="../index.html">up</a></section>')
    (site / "_static" / "logo.png").write_bytes(b"png")
    (site / "_static" / "template.html").write_text('<a href="{{ pathto(x) }}">jinja</a>')  # not a page
    check = _load()
    checked, broken = check.broken_links(site)
    assert checked == 7  # the external link is not checked; _static templates are not pages
    assert sorted(b.split(" (")[1] for b in broken) == [
        "no id 'nope' on that page)", "no such file)", "points outside the site)"]
    assert any("missing.html" in b for b in broken) and any("#nope" in b for b in broken)
