"""The Workbench's "Sync" tab (issue 23) on `make serve` with a Workbench login, in headless
Chromium at 1280x800, as a member of staff uses it:

- the tab lists a conflict held for a person, a failed record and a deleted_in_advoware record,
  each with its reason and actions;
- "sync now" on the failed record (Advoware answers again) makes it clean;
- "restore the Advoware value" on a conflict puts the overwritten value on both sides, and the
  record's history timeline shows the person's decision;
- the tab's data routes answer 401 without the login and 403 cross-site;
- light and dark theme, nothing loaded from another host, no horizontal scrolling;
- no personal value of these records in the service's log.

One stack (the package's `served`), one browser session. VMH_UPDATE_SCREENSHOTS=1 writes the
screenshots to docs/img/ (sync-tab-light.png, sync-tab-dark.png).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox.act import Actor
from tests.e2e.conftest import Served
from tests.support.chromium import Browser
from tests.support.flood import linked_person
from tests.support.processes import PROJECT_ROOT
from tests.support.stack import espo_create, espo_get, read_dotenv, wait_until

# The module's fixtures start a Workbench page (the first start bundles it) and set up four
# records: more than the default 300 s per test on a busy machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SANDBOX = read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env")
ADMIN = {"Authorization": f"Bearer {SANDBOX['SYNC_ADMIN_TOKEN']}"}
CONSOLE = "/__vmh/sync-console"
THEME_KEY = "motia-theme-storage"


def ops(served: Served, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, served.stack.motia_url + path, headers=ADMIN, timeout=120, **kw)


def advo_titel(actor: Actor, betnr: int) -> Any:
    return actor.advo_call("GET", f"Beteiligte/{betnr}").json().get("titel")


def settle(served: Served, actor: Actor, rid: str, status: str) -> dict[str, Any]:
    """Until EspoCRM shows `status` for the record (the webhook's sync, or one from the ops API)."""

    def reached() -> bool:
        if espo_get(actor, rid).get("syncStatus") == status:
            return True
        ops(served, "POST", "/vmh/beteiligte/sync/record", json={"id": rid})
        return espo_get(actor, rid).get("syncStatus") == status

    wait_until(reached, timeout=120, interval=1.0, message=f"{rid} {status}")  # each try: a sync
    return espo_get(actor, rid)


def history(served: Served, rid: str) -> list[dict[str, Any]]:
    resp = ops(served, "GET", "/vmh/beteiligte/sync/history", params={"id": rid})
    assert resp.status_code == 200, resp.text
    entries: list[dict[str, Any]] = resp.json()["entries"]
    return entries


@pytest.fixture(scope="module")
def scene(served: Served) -> Iterator[dict[str, Any]]:
    """Four records on the served stack: a title conflict (EspoCRM's value won), a conflict held
    for a person (a possible duplicate), a failed record (Advoware answers 500 to its write) and a
    record whose party was deleted in Advoware."""
    actor = Actor(served.stack.espo_url, served.stack.advo_url)
    tag = uuid.uuid4().hex[:6]
    names = {k: f"{k.capitalize()}{tag}" for k in ("konflikt", "gehalten", "fehler", "geloescht")}
    titles = {"advoware": f"Dr. A{tag}", "espocrm": f"Prof. E{tag}", "failed": f"Dr. F{tag}"}
    c_rid, c_betnr = linked_person(actor, names["konflikt"])
    f_rid, f_betnr = linked_person(actor, names["fehler"])
    d_rid, d_betnr = linked_person(actor, names["geloescht"])
    # The conflict: Advoware's title first (no webhook), then EspoCRM's: the sync keeps EspoCRM's.
    current = actor.advo_call("GET", f"Beteiligte/{c_betnr}").json()
    actor.advo_call("PUT", f"Beteiligte/{c_betnr}", json={**current, "titel": titles["advoware"]})
    actor.espo.put(f"CBeteiligte/{c_rid}", json={"titel": titles["espocrm"]}).raise_for_status()
    wait_until(
        lambda: any(
            c.get("field") == "title" for e in history(served, c_rid) for c in e.get("conflicts") or ()
        ),
        timeout=120,
        interval=1.0,  # each look a step process of the service
        message="the title conflict",
    )
    # A conflict held for a person, as the identity check leaves one (no betnr, status and reason):
    # its create webhook leaves it parked.
    held_reason = "Mögliche Dublette: gleiche Person wie ein anderer Datensatz (Prüfung durch eine Person)"
    h_rid = espo_create(
        actor,
        {
            "beteiligterTyp": "Person",
            "firstName": "Fritz",
            "lastName": names["gehalten"],
            "syncStatus": "conflict",
            "syncErrorMessage": held_reason,
        },
    )
    # The failed record: Advoware refuses its write with 500 until the fault is lifted.
    fault = {"kind": "500", "next_n": None, "match": {"method": "PUT", "path": f"Beteiligte/{f_betnr}$"}}
    httpx.post(f"{served.stack.advo_url}/__sandbox/faults", json=fault, timeout=30).raise_for_status()
    actor.espo.put(f"CBeteiligte/{f_rid}", json={"titel": titles["failed"]}).raise_for_status()
    failed = settle(served, actor, f_rid, "failed")
    # The deleted party.
    actor.advo_call("DELETE", f"Beteiligte/{d_betnr}")
    deleted = settle(served, actor, d_rid, "deleted_in_advoware")
    try:
        yield {
            "actor": actor,
            "conflict": (c_rid, c_betnr),
            "held": (h_rid, held_reason),
            "failed": (f_rid, f_betnr, failed["syncErrorMessage"]),
            "deleted": (d_rid, deleted["syncErrorMessage"]),
            "names": {**names, **titles},
            "titles": titles,
        }
    finally:
        httpx.delete(f"{served.stack.advo_url}/__sandbox/faults", timeout=30).raise_for_status()


ROWS = """[...document.querySelectorAll('[data-testid="needs-person-row"]')].map((r) => ({
  id: r.dataset.id, kind: r.dataset.kind, reason: r.querySelector('[data-testid="reason"]').innerText,
  actions: [...r.querySelectorAll('[data-action]')].map((b) => b.dataset.action)}))"""
FITS = """(() => { const el = document.querySelector('[data-testid="sync-console"]');
  return {scroll: el.scrollWidth, client: el.clientWidth, page: document.documentElement.scrollWidth,
          bg: getComputedStyle(el).backgroundColor, fg: getComputedStyle(el).color} })()"""


def open_tab(browser: Browser, served: Served, theme: str) -> None:
    browser.evaluate(
        f"localStorage.setItem('{THEME_KEY}', JSON.stringify({{state: {{theme: '{theme}'}}, version: 0}}))"
    )
    browser.goto(served.stack.motia_url + "/")
    browser.wait_for("!!document.querySelector('[data-testid=\"sync-link\"]')", timeout=240)
    browser.pump(1.0)
    # The Workbench keeps the last tab open across reloads; clicking the open one would fold it.
    if browser.evaluate("document.querySelector('[data-testid=\"sync-link\"]').dataset.state") != "active":
        browser.click('[data-testid="sync-link"]')
    browser.wait_for(
        "document.querySelectorAll('[data-testid=\"needs-person-row\"]').length > 0", timeout=120
    )


def click_and_wait(browser: Browser, selector: str) -> dict[str, Any]:
    seq = "Number(document.querySelector('[data-testid=\"action-result\"]')?.dataset.seq ?? 0)"
    before = browser.evaluate(seq)
    browser.wait_for(f"!!document.querySelector({json.dumps(selector + ':not([disabled])')})", timeout=60)
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
    browser.click(selector)
    browser.wait_for(f"{seq} > {before}", timeout=180)
    result: dict[str, Any] = browser.evaluate(
        "(() => { const r = document.querySelector('[data-testid=\"action-result\"]');"
        " return {ok: r.dataset.ok === 'true', text: r.innerText} })()"
    )
    return result


@pytest.fixture(scope="module")
def session(
    served: Served, scene: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One browser session: light theme, the list, sync now, restore, then the dark theme."""
    shots = tmp_path_factory.mktemp("sync-tab")
    light, dark = shots / "sync-tab-light.png", shots / "sync-tab-dark.png"
    f_rid = scene["failed"][0]
    c_rid = scene["conflict"][0]
    out: dict[str, Any] = {"light": light, "dark": dark}
    with Browser(width=1280, height=800, login=served.login) as browser:
        browser.goto(served.stack.motia_url + "/")
        open_tab(browser, served, "light")
        out["rows"] = browser.evaluate(ROWS)
        out["fits_light"] = browser.evaluate(FITS)
        browser.evaluate(
            "document.querySelector('[data-testid=\"needs-person\"]').scrollIntoView({block: 'start'})"
        )
        browser.pump(0.3)
        browser.screenshot(light)
        # Advoware answers again; a person presses "sync now" on the failed record.
        httpx.delete(f"{served.stack.advo_url}/__sandbox/faults", timeout=30).raise_for_status()
        out["sync_now"] = click_and_wait(
            browser, f'[data-testid="needs-person-row"][data-id="{f_rid}"] [data-action="sync"]'
        )
        out["rows_after_sync"] = browser.evaluate(ROWS)
        out["restore"] = click_and_wait(
            browser,
            f'[data-testid="conflict-row"][data-id="{c_rid}"][data-field="title"] [data-action="restore"]',
        )
        browser.wait_for(
            "document.querySelectorAll('[data-testid=\"history-entry\"]').length > 0", timeout=60
        )
        out["timeline"] = browser.evaluate(
            "[...document.querySelectorAll('[data-testid=\"history-entry\"]')].map((e) => ({"
            "trigger: e.dataset.trigger, result: e.dataset.result, text: e.innerText}))"
        )
        open_tab(browser, served, "dark")
        out["fits_dark"] = browser.evaluate(FITS)
        browser.pump(0.5)
        browser.screenshot(dark)
        out["requests"] = list(browser.page_requests)
    if os.environ.get("VMH_UPDATE_SCREENSHOTS") == "1":
        (PROJECT_ROOT / "docs" / "img").mkdir(exist_ok=True)
        for picture in (light, dark):
            shutil.copyfile(picture, PROJECT_ROOT / "docs" / "img" / picture.name)
    return out


def test_the_tab_lists_what_needs_a_person_with_reasons(
    scene: dict[str, Any], session: dict[str, Any]
) -> None:
    rows = {r["id"]: r for r in session["rows"]}
    h_rid, held_reason = scene["held"]
    f_rid, _, failed_reason = scene["failed"]
    d_rid, deleted_reason = scene["deleted"]
    assert rows[h_rid]["kind"] == "conflict" and rows[h_rid]["reason"] == held_reason
    assert rows[f_rid]["kind"] == "failed" and rows[f_rid]["reason"] == failed_reason and failed_reason
    assert rows[d_rid]["kind"] == "deleted_in_advoware" and rows[d_rid]["reason"] == deleted_reason
    assert {"sync", "relink", "unlock", "exclude"} <= set(rows[h_rid]["actions"])
    assert "relink" in rows[d_rid]["actions"] and "sync" in rows[f_rid]["actions"]
    assert scene["conflict"][0] not in rows  # the title conflict was resolved (EspoCRM won): clean


def test_sync_now_makes_the_failed_record_clean(scene: dict[str, Any], session: dict[str, Any]) -> None:
    f_rid = scene["failed"][0]
    assert session["sync_now"]["ok"], session["sync_now"]
    assert espo_get(scene["actor"], f_rid)["syncStatus"] == "clean"
    assert advo_titel(scene["actor"], scene["failed"][1]) == scene["titles"]["failed"]
    assert f_rid not in {r["id"] for r in session["rows_after_sync"]}


def test_restore_puts_the_advoware_value_on_both_sides_and_the_history_shows_it(
    scene: dict[str, Any], session: dict[str, Any]
) -> None:
    c_rid, c_betnr = scene["conflict"]
    assert session["restore"]["ok"], session["restore"]
    restored = scene["titles"]["advoware"]
    assert espo_get(scene["actor"], c_rid)["titel"] == restored
    assert advo_titel(scene["actor"], c_betnr) == restored
    decisions = [e for e in session["timeline"] if e["trigger"] == "restore"]
    assert decisions and decisions[0]["result"] == "restored" and "a person decided" in decisions[0]["text"]
    assert any("conflict title" in e["text"] for e in session["timeline"])


def test_light_and_dark_theme_fit_1280_and_load_nothing_from_elsewhere(
    served: Served, session: dict[str, Any]
) -> None:
    light, dark = session["fits_light"], session["fits_dark"]
    for fits in (light, dark):
        assert fits["scroll"] <= fits["client"] and fits["page"] <= 1280, fits
    assert light["bg"] != dark["bg"] and light["fg"] != dark["fg"]  # the Workbench's theme variables
    own = f"127.0.0.1:{served.stack.motia_port}"
    foreign = [
        u
        for u in session["requests"]
        if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != own
    ]
    assert not foreign, foreign[:10]
    assert any(CONSOLE in u for u in session["requests"])
    for picture in (session["light"], session["dark"]):
        assert Path(picture).stat().st_size > 20_000


def test_the_data_routes_need_the_login_and_refuse_cross_site(served: Served, scene: dict[str, Any]) -> None:
    base = served.stack.motia_url + CONSOLE
    c_rid = scene["conflict"][0]
    anon = [
        httpx.get(base + "/overview", timeout=30),
        httpx.get(base + "/history", params={"id": c_rid}, timeout=30),
        httpx.post(base + "/action", json={"action": "sync", "id": c_rid}, timeout=30),
    ]
    assert [r.status_code for r in anon] == [401, 401, 401]
    assert all(c_rid not in r.text for r in anon)
    cross = [
        httpx.get(
            base + "/overview", auth=served.login, headers={"Sec-Fetch-Site": "cross-site"}, timeout=30
        ),
        httpx.post(
            base + "/action",
            auth=served.login,
            headers={"Origin": "http://evil.example"},
            json={"action": "exclude", "id": c_rid},
            timeout=30,
        ),
    ]
    assert [r.status_code for r in cross] == [403, 403]
    assert espo_get(scene["actor"], c_rid)["syncStatus"] != "excluded"
    ok = httpx.get(base + "/overview", auth=served.login, timeout=120)
    assert ok.status_code == 200 and ok.json()["attention"]["status"] == 200
    assert SANDBOX["SYNC_ADMIN_TOKEN"] not in ok.text  # the token never reaches the browser


def test_no_personal_value_in_the_log(served: Served, scene: dict[str, Any], session: dict[str, Any]) -> None:
    log = served.stack.log_text("motia")
    assert session["restore"]["ok"] and "sync console: restore" in log
    leaked = [n for n in scene["names"].values() if n in log]
    assert not leaked, leaked
    assert json.dumps(scene["held"][1])[1:-1] not in log
