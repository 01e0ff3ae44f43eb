"""A record's stream as EspoCRM staff see it, rendered from the sandbox's notes (local HTML,
nothing loaded from anywhere), and its screenshot with headless Chromium."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.chromium import Browser

STYLE = """
body { font-family: sans-serif; background: #f5f5f5; margin: 0; }
header { background: #2b3a4a; color: #fff; padding: 12px 24px; font-size: 18px; }
.panel { background: #fff; margin: 20px 24px; border: 1px solid #ddd; border-radius: 4px; }
.panel h2 { font-size: 15px; margin: 0; padding: 10px 16px; border-bottom: 1px solid #eee; }
.note { padding: 12px 16px; border-bottom: 1px solid #eee; }
.meta { color: #777; font-size: 12px; margin-bottom: 6px; }
.mention { color: #2a6db0; font-weight: bold; }
.post { white-space: pre-wrap; font-size: 14px; line-height: 1.45; }
"""


def render(title: str, notes: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for note in sorted(notes, key=lambda n: str(n.get("createdAt")), reverse=True):
        post = html.escape(str(note.get("post", "")))
        post = re.sub(r"(@[A-Za-z0-9_.\-]+)", r'<span class="mention">\1</span>', post)
        meta = html.escape(f"{note.get('createdByName', '')} · {note.get('createdAt', '')}")
        items.append(f'<div class="note"><div class="meta">{meta}</div><div class="post">{post}</div></div>')
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"
        f"<header>EspoCRM · Beteiligte</header><div class='panel'><h2>{html.escape(title)} · Stream</h2>"
        + "".join(items)
        + "</div></body></html>"
    )


def screenshot(title: str, notes: Sequence[Mapping[str, Any]], page: Path, image: Path) -> str:
    """Write the page and its screenshot; returns the text the browser shows."""
    page.write_text(render(title, notes), encoding="utf-8")
    with Browser(width=1000, height=420) as browser:
        browser.goto(page.as_uri())
        text = str(browser.wait_for("document.readyState === 'complete' && document.body.innerText"))
        browser.screenshot(image)
    return text
