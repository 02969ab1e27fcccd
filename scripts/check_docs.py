#!/usr/bin/env python
"""Check the built documentation in a real headless browser (Chromium) and check every internal link.

    sphinx-build -W --keep-going -b html docs docs/_build/html
    python scripts/check_docs.py docs/_build/html [--screenshot docs/_build/index.png] [--query binning]

Three checks, each printed with its result; the exit status is non-zero if any fails:

1. **The index page renders**: Chromium (``apt-get install -y chromium``) loads it from a local HTTP server
   and saves a screenshot (look at it); the rendered DOM must contain the page's title.
2. **Search works**: ``search.html?q=QUERY`` is loaded, its JavaScript run, and the rendered DOM must list at
   least one result (``ul.search li``) linking to a page.
3. **No broken internal link**: every ``href`` and ``src`` of every built HTML page that points inside the
   site must name an existing file, and a ``#fragment`` an ``id`` on that page.
"""
from __future__ import annotations

import argparse
import functools
import html
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


class _Links(HTMLParser):
    """The href/src values and the ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.links.append(value)
            elif name in ("id", "name"):
                self.ids.add(value)


def parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def broken_links(site: Path) -> tuple[int, list[str]]:
    """Every internal link of every page: (links checked, descriptions of the broken ones)."""
    # Pages, not the theme's templates that Sphinx copies into _static (they hold unrendered Jinja).
    pages = sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in ("_static", "_sources"))
    parsed = {p.resolve(): parse(p) for p in pages}
    checked, broken = 0, []
    for page, info in parsed.items():
        for link in info.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not ours to check offline
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            checked += 1
            where = f"{page.relative_to(site.resolve())}: {link}"
            if not target.is_relative_to(site.resolve()):
                broken.append(f"{where} (points outside the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no id {parts.fragment!r} on that page)")
    return checked, broken


def find_browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium found: apt-get install -y chromium (or put chromium on PATH)")


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A local HTTP server of the built site (search needs its scripts served as a browser would)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # no line per request
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium(browser: str, profile: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?", default=Path("docs/_build/html"),
                        help="the built HTML directory (default docs/_build/html)")
    parser.add_argument("--screenshot", type=Path, help="where to save the index page's screenshot "
                        "(default SITE/../index-screenshot.png)")
    parser.add_argument("--query", default="binning", help="the search term (default: binning)")
    parser.add_argument("--window", default="1400,1800", help="browser window WIDTH,HEIGHT (default 1400,1800)")
    args = parser.parse_args(argv)
    site: Path = args.site.resolve()
    if not (site / "index.html").is_file():
        parser.error(f"site: {site} has no index.html (build the docs first)")
    failures = []

    checked, broken = broken_links(site)
    print(f"links: {checked} internal links checked, {len(broken)} broken")
    for item in broken[:50]:
        print(f"  broken: {item}")
    if broken:
        failures.append("links")

    browser = find_browser()
    server, base = serve(site)
    screenshot = (args.screenshot or site.parent / "index-screenshot.png").resolve()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as profile:
            shot = chromium(browser, profile, f"--window-size={args.window}", f"--screenshot={screenshot}",
                            "--virtual-time-budget=5000", f"{base}/index.html")
            dom = chromium(browser, profile, "--virtual-time-budget=5000", "--dump-dom", f"{base}/index.html")
            heading = re.search(r"<h1[^>]*>(.*?)</h1>", (site / "index.html").read_text(), re.S)
            text = html.unescape(heading.group(1).split("<", 1)[0]).strip() if heading else ""  # not its "#" link
            shown = html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout))
            rendered = bool(text) and "<h1" in dom.stdout and text in shown  # the page's own heading, drawn
            ok = screenshot.is_file() and screenshot.stat().st_size > 10_000 and rendered
            print(f"index: screenshot {screenshot} ({screenshot.stat().st_size if screenshot.is_file() else 0} "
                  f"bytes), title rendered: {rendered}" + ("" if ok else f"\n  {shot.stderr[-500:]}"))
            if not ok:
                failures.append("index")

            search = chromium(browser, profile, "--virtual-time-budget=15000", "--dump-dom",
                              f"{base}/search.html?q={args.query}")
            results = re.findall(r'<ul[^>]*class="search"[^>]*>(.*?)</ul>', search.stdout, re.S)
            hits = re.findall(r"<li[^>]*>.*?<a [^>]*href=\"([^\"]+)\"", results[0], re.S) if results else []
            print(f"search: {args.query!r} -> {len(hits)} results" + (f", first {hits[0]}" if hits else ""))
            if not hits:
                failures.append("search")
    finally:
        server.shutdown()
    print("OK" if not failures else f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
