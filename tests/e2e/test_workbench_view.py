"""What a member of staff sees: the Workbench of `make serve` in headless Chromium at 1600x1000.

- The `vmh` flow at fit-to-view reads at first glance: EspoCRM -> the three webhooks -> the sync
  step -> Advoware, both sweeps feeding the sync step; every node label at least 10 px high.
- The page loads nothing from a third party: the HTML and the JS/CSS it references name no other
  host, and every request the browser makes (scripts, styles, fonts, images, WebSockets) goes to
  the service's own origin.

The ops flow `vmh-ops` is checked for legible labels too. VMH_UPDATE_SCREENSHOTS=1 also writes
both screenshots to docs/ (workbench-vmh-flow.png, workbench-vmh-ops-flow.png).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import Served
from tests.support.chromium import Browser
from tests.support.processes import PROJECT_ROOT

pytestmark = pytest.mark.e2e

VMH_NODES = {
    "EspoCRM",
    "EspoWebhookCreate",
    "EspoWebhookUpdate",
    "EspoWebhookDelete",
    "BeteiligteSync",
    "BeteiligteSweep",
    "BeteiligteSweepNow",
    "Advoware",
}
# EspoCRM -> 3 webhooks, 3 webhooks -> sync, 2 sweeps -> sync, sync -> Advoware.
VMH_EDGES = 9
MIN_LABEL_PX = 10.0

# For each node: its label's rendered box (a Range over the text: what the eye sees) and its
# effective font size (computed size x the flow's zoom), plus whether the node is in view.
MEASURE = r"""
(() => {
  const pane = document.querySelector('.react-flow').getBoundingClientRect()
  const m = /scale\(([\d.]+)\)/.exec(document.querySelector('.react-flow__viewport').style.transform)
  const zoom = m ? parseFloat(m[1]) : 1
  return [...document.querySelectorAll('.react-flow__node')].map((node) => {
    const label = [...node.querySelectorAll('div')].find((d) => d.children.length === 0 && d.classList.contains('font-semibold'))
    const range = document.createRange()
    range.selectNodeContents(label)
    const box = range.getBoundingClientRect()
    const r = node.getBoundingClientRect()
    return {
      label: label.textContent,
      height: box.height,
      fontPx: parseFloat(getComputedStyle(label).fontSize) * zoom,
      inView: r.left >= pane.left && r.right <= pane.right && r.top >= pane.top && r.bottom <= pane.bottom,
    }
  })
})()
"""


@pytest.fixture(scope="module")
def page(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Workbench opened once, as a person would: the browser answers the login prompt."""
    shots = tmp_path_factory.mktemp("workbench")
    shot, ops_shot = shots / "workbench-vmh-flow.png", shots / "workbench-vmh-ops-flow.png"
    layout = (PROJECT_ROOT / "motia-workbench.json").read_text()
    with Browser(width=1600, height=1000, login=served.login) as browser:
        browser.goto(served.stack.motia_url + "/")
        # The first start bundles the Workbench's dependencies: give it time.
        browser.wait_for(
            f"document.querySelectorAll('.react-flow__node').length >= {len(VMH_NODES)}", timeout=240
        )
        browser.wait_for(f"document.querySelectorAll('.react-flow__edge').length >= {VMH_EDGES}", timeout=60)
        browser.pump(1.5)  # fit-to-view runs right after the nodes are measured
        nodes = browser.evaluate(MEASURE)
        edges = browser.evaluate("document.querySelectorAll('.react-flow__edge').length")
        browser.screenshot(shot)
        # The ops flow: chosen as a person would, in the flow menu.
        browser.click('[data-testid="flows-dropdown-trigger"]')
        browser.click('[data-testid="dropdown-vmh-ops"]')
        browser.wait_for(
            "[...document.querySelectorAll('.react-flow__node')].some(n => n.innerText.includes('OpsHealth'))",
            timeout=120,
        )
        browser.pump(1.5)
        ops_nodes = browser.evaluate(MEASURE)
        browser.screenshot(ops_shot)
        requests = list(browser.page_requests)
    # make serve never rewrites the committed layout (the Workbench used to save its own).
    assert (PROJECT_ROOT / "motia-workbench.json").read_text() == layout
    if os.environ.get("VMH_UPDATE_SCREENSHOTS") == "1":
        for picture in (shot, ops_shot):
            shutil.copyfile(picture, PROJECT_ROOT / "docs" / picture.name)
    yield {"nodes": nodes, "edges": edges, "requests": requests, "shot": shot, "ops_nodes": ops_nodes}


def test_vmh_flow_shows_the_whole_path(page: dict[str, Any]) -> None:
    assert {n["label"] for n in page["nodes"]} == VMH_NODES
    assert page["edges"] == VMH_EDGES
    assert all(n["inView"] for n in page["nodes"]), page["nodes"]  # fit-to-view shows every node
    assert page["shot"].stat().st_size > 20_000  # a real picture, not a blank page


def test_node_labels_are_at_least_10px_high(page: dict[str, Any]) -> None:
    small = [n for n in page["nodes"] if n["height"] < MIN_LABEL_PX or n["fontPx"] < MIN_LABEL_PX]
    assert not small, small


def test_ops_flow_is_legible_too(page: dict[str, Any]) -> None:
    labels = {n["label"] for n in page["ops_nodes"]}
    assert {
        "OpsHealth",
        "OpsMetrics",
        "BeteiligteSyncStatus",
        "BeteiligteRetryFailed",
        "BeteiligteSync",
    } <= labels
    assert not labels & {"EspoCRM", "EspoWebhookCreate"}  # the ops endpoints are not in the vmh picture
    assert all(n["inView"] for n in page["ops_nodes"]), page["ops_nodes"]
    small = [n for n in page["ops_nodes"] if n["height"] < MIN_LABEL_PX or n["fontPx"] < MIN_LABEL_PX]
    assert not small, small


def test_the_browser_loads_only_from_the_service(served: Served, page: dict[str, Any]) -> None:
    own = f"127.0.0.1:{served.stack.motia_port}"
    foreign = [
        u
        for u in page["requests"]
        if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != own
    ]
    assert len(page["requests"]) > 50 and not foreign, foreign[:20]
    assert any(u.startswith(f"ws://{own}") for u in page["requests"])  # the streams, on the same port


# Absolute URLs in places that make a browser load them (not links or error-message text).
LOADS_HTML = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//([^/"']+)""", re.I)
# Case-sensitive: CSS `url(` (JavaScript's `new URL("http://localhost")` is not a load).
LOADS_CSS = re.compile(r"""(?:(?<![\w.])url\(\s*["']?|@import\s+["'])(?:https?:)?//([^/"')]+)""")
LOADS_JS = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](?:https?:)?//([^/"']+)""", re.I)


def test_workbench_html_and_its_assets_name_no_other_host(served: Served) -> None:
    base = served.stack.motia_url
    html = httpx.get(base + "/", auth=served.login, timeout=60).text
    for host in ("googleapis", "gstatic", "amplitude", "reo.dev", "supabase"):
        assert host not in html, host
    assert not LOADS_HTML.findall(html)
    assets = sorted(set(re.findall(r'(?:src|href)="(/[^"]+)"', html)))
    inline = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert "/src/main.tsx" in assets and "/@vite/client" in assets
    checked = 0
    for asset in assets:
        text = httpx.get(base + asset, auth=served.login, timeout=120).text
        # The modules these import (one level further: the app's entry and the CSS it pulls in).
        more = re.findall(r"""\bfrom\s*["'](/[^"']+)["']|\bimport\s*["'](/[^"']+)["']""", text)
        for sub in sorted({a or b for a, b in more})[:40]:
            sub_text = httpx.get(base + sub, auth=served.login, timeout=120).text
            assert not LOADS_JS.findall(sub_text) and not LOADS_CSS.findall(sub_text), sub
            checked += 1
        assert not LOADS_JS.findall(text) and not LOADS_CSS.findall(text), asset
        checked += 1
    for script in inline:
        assert not LOADS_JS.findall(script) and "https://" not in script
    assert checked >= 5
