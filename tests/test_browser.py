"""JupyterLab in a real browser (Playwright driving Debian's Chromium): the quickstart, live.

JupyterLab runs on loopback with a token. The test opens notebooks/01_quickstart.ipynb,
runs all its cells through the UI (the receiver stays live), then posts signed deliveries
from outside the kernel to the URLs the notebook shows, and checks in the page that the
dashboard's counters, failure view, click-to-inspect and type filter follow. Its
screenshots (``ELWH_SCREENSHOTS``, else a temporary folder) are the docs' pictures:
``make screenshots`` copies them into docs/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from elwh_nb import sign
from testkit.jupyter import jupyter_server

from .conftest import SECRET, require
from .helpers import signed, wait_for
from .kernel_ws import RemoteKernel

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("ELWH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    require(
        Path(CHROMIUM).exists(),
        "Chromium",
        "apt-get install chromium, or set ELWH_CHROMIUM to a Chromium binary",
    )
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", root)
    news = root / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)  # no "would you like news?" pop-up over the screenshots
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = {
        "ELWH_WEBHOOK_SECRET": SECRET,  # what the notebook reads; the test signs with it too
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
    }
    with jupyter_server(root, app="jupyterlab", base_url="/", env=env, timeout=90) as server:
        yield server.origin, server.token, root


def test_quickstart_dashboard_live_in_jupyterlab(lab: tuple[str, str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    origin, token, _ = lab
    shots = Path(os.environ.get("ELWH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(60_000)
        try:
            _drive(page, origin, token, shots, expect)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))
            raise
        finally:
            browser.close()
    assert errors == [], errors


def _drive(page: Any, origin: str, token: str, shots: Path, expect: Any) -> None:
    if True:
        page.goto(f"{origin}/lab/tree/01_quickstart.ipynb?token={token}")
        notebook = page.locator(".jp-NotebookPanel-notebook")
        expect(notebook.locator(".jp-Cell").first).to_be_visible()
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_attached(
            timeout=90_000
        )

        # Run All, through the UI's Run menu: the receiver is still listening at the end.
        cells = len(json.loads((ROOT / "notebooks" / "01_quickstart.ipynb").read_text())["cells"])
        wait_for(lambda: notebook.locator(".jp-Cell").count() == cells, 60, "every cell to render")
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        output = notebook.locator(".jp-OutputArea-output", has_text="Give ElevenLabs this URL:")
        expect(output).to_be_visible(timeout=90_000)
        url = re.search(r"Give ElevenLabs this URL: (\S+)", output.inner_text()).group(1)  # type: ignore[union-attr]
        counters = notebook.locator(".widget-html", has_text="in the last minute").first
        expect(counters).to_contain_text("accepted", timeout=90_000)
        so_far = notebook.locator(".jp-OutputArea-output", has_text="events so far")
        expect(so_far).to_be_visible(timeout=90_000)
        accepted = int(re.search(r"(\d+) events so far", so_far.inner_text()).group(1))  # type: ignore[union-attr]
        expect(counters).to_contain_text(f"{accepted} accepted")  # the dashboard caught up by itself
        header = notebook.locator(".widget-html", has_text="proxy URL (needs a Jupyter login)").first
        # The header's first line is the URL to give ElevenLabs; the others are folded under it.
        expect(header.locator("code").first).to_have_text(url)
        assert "proxy URL" not in header.inner_text()  # folded: only what is shown counts
        header.screenshot(path=str(shots / "header.png"))  # one line: state and the URL to give
        header.locator("summary").click()  # unfold, as a user who wants the other URLs would
        expect(header).to_contain_text("proxy URL (needs a Jupyter login)")
        proxy_url = re.search(r"proxy URL \(needs a Jupyter login\): (\S+)", header.inner_text()).group(1)  # type: ignore[union-attr]
        assert url.startswith(f"{origin}/elwh/hook/") and token not in url and token not in proxy_url

        # From outside the kernel: the public route with no token, then the proxy with the token.
        for seed in range(3):
            body, headers = signed(seed=100 + seed)
            assert httpx.post(url, content=body, headers=headers).status_code == 200
        body, headers = signed("speech_to_text_transcription", seed=200)
        assert httpx.post(proxy_url, content=body, headers=headers).status_code == 403
        r = httpx.post(proxy_url, content=body, headers={**headers, "Authorization": f"token {token}"})
        assert r.status_code == 200
        body, _ = signed(seed=300)
        assert (
            httpx.post(
                url, content=body, headers={"ElevenLabs-Signature": sign(body + b"!", SECRET)}
            ).status_code
            == 401
        )

        expect(counters).to_contain_text(f"{accepted + 4} accepted", timeout=30_000)
        page.screenshot(path=str(shots / "dashboard-page.png"), full_page=False)
        notebook.locator(".widget-vbox").filter(has_text="in the last minute").first.screenshot(
            path=str(shots / "dashboard.png")
        )

        # The failure view shows the tampered delivery with its reason; a click on it inspects it:
        # the explanation, and the headers as this test sent them (not the route's).
        dashboard = notebook.locator(".widget-vbox").filter(has_text="in the last minute").first
        dashboard.get_by_role("button", name="failed").click()
        table = dashboard.locator(".elwh-rows table").first
        expect(table).to_contain_text("signature_mismatch")
        page.screenshot(path=str(shots / "dashboard-failures.png"))
        table.locator("tr[data-row]", has_text="signature_mismatch").first.click()
        detail = dashboard.locator(".widget-html", has_text="credentials redacted").first
        expect(detail).to_contain_text("signature_mismatch")
        expect(detail).to_contain_text("ElevenLabs-Signature", ignore_case=True)
        expect(table.locator("tr.elwh-picked")).to_have_count(1)  # the row inspected shows picked
        shown = detail.inner_text()
        assert "X-Elwh" not in shown and "python-httpx" in shown  # what httpx sent, and nothing added
        assert re.search(
            r"Host\s+" + re.escape(origin.split("//", 1)[1]), shown
        )  # Jupyter's, not the kernel's
        dashboard.screenshot(path=str(shots / "dashboard-inspect.png"))
        dashboard.get_by_role("button", name="accepted").click()

        # Choosing a type in the UI narrows the table.
        expect(table).to_contain_text("post_call_transcription")
        types = dashboard.get_by_label("types", exact=True)  # not the calls tab's "tools"
        types.select_option("speech_to_text_transcription")
        expect(table).not_to_contain_text("post_call_transcription")
        expect(table).to_contain_text("speech_to_text_transcription")
        page.screenshot(path=str(shots / "dashboard-filtered.png"))

        # Clearing the dashboard's output leaves JupyterLab no view of it: its timer stops.
        headers = {"Authorization": f"token {token}"}
        (session,) = httpx.get(f"{origin}/api/sessions", headers=headers).json()
        kernel = RemoteKernel(origin, headers, kernel_id=session["kernel"]["id"])

        def state() -> list[str]:  # on another thread: this one runs Playwright's event loop
            code = "print(rx._shown.refreshing, rx._shown._view_count)"
            with ThreadPoolExecutor(1) as pool:
                return pool.submit(kernel.run, code).result().split()

        assert state() == ["True", "1"]
        shown = notebook.locator(".widget-vbox", has_text="in the last minute")
        panel = page.locator(".widget-vbox", has_text="in the last minute")
        cell = notebook.locator(".jp-CodeCell").filter(has=panel).first
        cell.locator(".jp-InputArea").click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="Clear Cell Output").click()
        expect(shown).to_have_count(0)
        wait_for(lambda: state() == ["False", "0"], 30, "the timer to stop")
