"""`fer dashboard`: the static site from a history, and the site in a real browser."""

import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from fer.bench.dashboard import build_dashboard
from fer.cli import main
from unit_tests.helpers import make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FAST = {"conv": 20.0, "optimizer": 2.0, "elementwise": 1.0}


@pytest.fixture
def history(tmp_path):
    """Eight runs of two groups; the newest makes b[2] 40% slower (its optimizer)."""
    folder = tmp_path / "history"
    folder.mkdir()
    wobble = (1.0, 1.012, 0.99, 1.006, 0.995, 1.01, 1.0, 1.004)
    for i, w in enumerate(wobble):
        slow = 1.4 if i == len(wobble) - 1 else 1.0
        when = f"2026-03-0{i + 1}T10:00:00"
        benches = {"a[1]": [1.0 * w] * 3, "a[2]": [2.0 * w] * 3, "b[1]": [0.5 * w] * 3,
                   "b[2]": [0.7 * w * slow] * 3}
        groups = {name: "alpha" if name.startswith("a") else "beta" for name in benches}
        make_run(folder / f"run{i}.json", benches, calibration=0.05, when=when, group=groups,
                 commit=f"{i:02d}ab" * 4, breakdown=dict(FAST, optimizer=2.0 + 30 * (slow - 1)))
    return folder


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href and not href.startswith(("http", "#")):
            self.links.append(href.split("#")[0])


def test_site_pages_and_links(history, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["dashboard", str(history), "--out", str(out)]) == 0
    assert "1 regressed in the newest runs" in capsys.readouterr().out
    index = (out / "index.html").read_text()
    assert index.count("<svg") == 4 and 'class="regressed"' in index and "b[2]" in index
    # every relative link of every page resolves to a file of the site
    for page in out.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            assert (page.parent / link).resolve().exists(), f"{page}: broken link {link}"
    bench = next((out).rglob("b_2*.html")).read_text()
    assert 'id="run-7"' in bench and "optimizer ms" in bench
    comparison = next(out.rglob("comparison.html")).read_text()
    assert "regressed" in comparison and "optimizer +" in comparison  # the why, from the breakdown
    # the run as a whole did not move; the one benchmark that did is judged apart
    assert "3 benchmark(s) together)" in comparison and "the run as a whole (time, " in comparison
    assert "judged apart (moved differently): b[2]" in comparison


def test_site_builds_without_torch(history, tmp_path):
    code = ("import sys\nfrom fer.cli import main\n"
            f"assert main(['dashboard', {str(history)!r}, '--out', {str(tmp_path / 's')!r}]) == 0\n"
            "assert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_bad_arguments_exit_2(history, tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "none"), "--out", str(tmp_path / "s")]) == 2
    assert main(["dashboard", str(history), "--out", str(history / "run0.json")]) == 2
    assert main(["dashboard", str(history), "--last", "-1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 3


def _browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (the test extra has it)")
    return playwright


@pytest.mark.slow
def test_the_site_in_a_real_browser(history, tmp_path):
    sync_playwright = _browser().sync_playwright
    site = build_dashboard([history], tmp_path / "site")
    pages = [site.out / "index.html", next(site.out.rglob("comparison.html")),
             next(site.out.rglob("b_2*.html")), next(site.out.rglob("report/index.html"))]
    shots = tmp_path / "shots"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        for i, path in enumerate(pages):
            page.goto(path.as_uri())
            page.screenshot(path=str(shots / f"page{i}.png"), full_page=True)
            charts = page.locator("svg.trend")
            for k in range(charts.count()):  # every chart drawn: a line or points, with a size
                chart = charts.nth(k)
                box = chart.bounding_box()
                assert box and box["width"] > 300 and box["height"] > 200
                assert chart.locator("circle.point").count() >= 1
            if i == 0:
                marker = page.locator("circle.regressed").first
                marker.scroll_into_view_if_needed()
                assert marker.is_visible() and marker.bounding_box()["width"] > 10
                assert page.locator(".verdict-regressed").first.is_visible()
                # a point links to its run: click it, land on the benchmark's page
                page.locator("svg.trend a").last.click()
                assert "bench/" in page.url and "#run-" in page.url
        browser.close()
    assert errors == []
    assert all(u.startswith("file://") for u in requests), "the site fetched from the network"
    assert all((shots / f"page{i}.png").stat().st_size > 10_000 for i in range(len(pages)))


@pytest.mark.parametrize("argv,error", [
    (["--threshold", "0"], "--threshold must be in (0, 10)"),
    (["--last", "-1"], "--last -1: must be >= 0"),
])
def test_dashboard_numbers_are_range_checked(tmp_path, capsys, argv, error):
    assert main(["dashboard", str(tmp_path), "--out", str(tmp_path / "site"), *argv]) == 2
    err = capsys.readouterr().err
    assert error in err and err.count("\n") == 1


def test_dashboard_of_a_file_names_its_own_argument(tmp_path, capsys):
    run = make_run(tmp_path / "a.json", {"a": [1.0] * 3})
    assert main(["dashboard", str(run), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert "HISTORY_DIR" in err and "a file, not a folder" in err and "--history" not in err
