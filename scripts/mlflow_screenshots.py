"""Screenshots of the MLflow UI for the README, from a real browser over a running `make ui`.

    make ui                                      # in another terminal; wait until it answers
    .venv/bin/pip install -e '.[screenshots]'    # playwright's driver only, no browser download
    .venv/bin/python scripts/mlflow_screenshots.py [--url http://127.0.0.1:5000]

Drives the system's Chromium (Debian: `apt-get install chromium`) headless with a new empty
profile, as a first-time visitor: opens the address `newsevents ui` prints, checks that it
lands on the runs table with the macro-F1 columns and true durations, and writes
docs/img/mlflow-runs.png (the runs table) and docs/img/mlflow-compare.png (all runs in the
comparison view, macro-F1 and its bootstrap interval). Exits non-zero, naming what it
did not find, when the UI does not show what the README promises. Not part of CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from newsevents import paths, tracking

# Chromium flags for a sandboxed, offline machine (no first-run, sync or update traffic).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COMPARE_METRICS = ("macro_f1", "macro_f1_ci_low", "macro_f1_ci_high")
TIMEOUT_MS = 60_000


def _dismiss(page: Page, name: str) -> None:
    """Click a button if the UI shows it (the assistant panel, the shared-view banner)."""
    button = page.get_by_role("button", name=name, exact=True)
    if button.count():
        button.first.click()


def check_runs_table(page: Page) -> list[str]:
    """The column headers; fail unless the page is the runs table with the headline columns
    and the champion tag."""
    page.locator(".ag-row").first.wait_for(timeout=TIMEOUT_MS)
    headers = [t.strip() for t in page.locator(".ag-header-cell").all_inner_texts()]
    missing = [c for c in ("Duration", "macro_f1", tracking.SELECTION_METRIC,
                           tracking.CHAMPION_TAG) if c not in headers]
    if missing:
        raise SystemExit(f"{page.url}: runs table lacks the column(s) {', '.join(missing)} "
                         f"(headers: {', '.join(headers)})")
    return headers


def _pick(page: Page, box: int, name: str) -> None:
    combo = page.get_by_role("combobox").nth(box)
    combo.click()
    page.keyboard.type(name)
    page.locator(f"[title='{name}']").filter(visible=True).first.click()
    page.keyboard.press("Escape")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="where `make ui` serves")
    parser.add_argument("--out", type=Path, default=paths.ROOT / "docs" / "img")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    start = tracking.ui_url(args.url)
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, args=FLAGS,
            viewport={"width": 1800, "height": 900})
        page = browser.new_page()
        page.goto(start)
        headers = check_runs_table(page)
        _dismiss(page, "Close")  # the assistant panel opens on a first visit
        _dismiss(page, "Hide banner")
        page.wait_for_timeout(1000)
        page.screenshot(path=args.out / "mlflow-runs.png")
        print(f"{args.out / 'mlflow-runs.png'}: runs table at {page.url}")

        rows = page.locator(".ag-row .ag-checkbox-input-wrapper").filter(visible=True)
        n_runs = rows.count()
        for i in range(n_runs):
            rows.nth(i).click()
        page.get_by_role("button", name="Compare").first.click()
        page.get_by_text("Parallel Coordinates Plot").wait_for(timeout=TIMEOUT_MS)
        page.goto(f"{page.url}&workflowType=machine_learning")  # keep the model-training menu
        page.get_by_role("button", name="Clear All").wait_for(timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Clear All").click()
        _pick(page, 0, "model.type")
        for metric in (m for m in COMPARE_METRICS if m in headers):  # UN: when its data was there
            _pick(page, 1, metric)
        page.wait_for_timeout(1500)
        page.screenshot(path=args.out / "mlflow-compare.png")
        print(f"{args.out / 'mlflow-compare.png'}: {n_runs} runs compared")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
