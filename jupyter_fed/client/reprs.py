"""HTML (and plain-text) rendering of sessions, metrics and tables for notebooks.

Pure string building with the standard library only: ``_repr_html_`` runs every time a notebook
shows an object, so it must stay cheap to import and must never raise (a failing repr shows the
user a traceback instead of their session). Styles use JupyterLab's CSS variables with fallbacks,
so light and dark themes both read well, and classes are prefixed ``jp-Fed-``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_fed.client.session import Session

__all__ = ["metrics_html", "metrics_rows", "session_html", "status_html", "table_html", "table_text"]

STATUS_COLOURS = {
    "created": "#6b7280", "pending": "#b45309", "running": "#2563eb", "completed": "#15803d",
    "failed": "#b91c1c", "cancelled": "#6b7280", "interrupted": "#b45309", "ok": "#15803d",
    "error": "#b91c1c", "unreachable": "#b91c1c", "dropped": "#b91c1c", "done": "#15803d",
}
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid var(--jp-border-color2,#e5e7eb)"
_HEAD = (f"{_CELL};font-weight:600;"
         "border-bottom:1px solid var(--jp-border-color1,#9ca3af)")


def fmt(value: Any, width: int = 80) -> str:
    """One value as short text: 4 significant decimals for floats, lists joined, long text cut."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.4g}"
        return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:.4f}"
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(fmt(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def status_html(status: str) -> str:
    """A coloured badge for a session, client or runner status."""
    colour = STATUS_COLOURS.get(status, "#6b7280")
    return (f'<span class="jp-Fed-status" style="color:{colour};font-weight:600">'
            f"{html.escape(status)}</span>")


def table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
               caption: str = "", raw: Iterable[str] = ()) -> str:
    """An HTML table; values are escaped unless their column is listed in ``raw``."""
    raw = set(raw)
    head = "".join(f'<th style="{_HEAD}">{html.escape(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td style="{_CELL}">'
            f"{row.get(c, '') if c in raw else html.escape(fmt(row.get(c)))}</td>"
            for c in columns) + "</tr>"
        for row in rows)
    cap = (f'<caption style="text-align:left;font-weight:600;padding:2px 0">'
           f"{html.escape(caption)}</caption>") if caption else ""
    return (f'<table class="jp-Fed-table" style="border-collapse:collapse;font-size:12px">{cap}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, width: int = 40) -> str:
    """The same table as fixed-width text, for terminals and logs."""
    cells = [[fmt(row.get(c), width) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(s.rstrip() for s in out)


def metrics_rows(data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Federated metrics as one row per model (round 0 is the initial model) and their columns."""
    fed = list(data.get("federated_metrics") or [])
    names = sorted({k for m in fed for k in m}, key=lambda k: (k != "loss", k == "num_examples", k))
    return [{"round": i, **m} for i, m in enumerate(fed)], ["round", *names]


def metrics_html(data: Mapping[str, Any]) -> str:
    """Table of federated metrics per round, for ``SessionMetrics._repr_html_``."""
    rows, cols = metrics_rows(data)
    if not rows:
        return f"<div>session {html.escape(str(data.get('session_id', '')))}: no metrics yet</div>"
    return table_html(rows, cols, caption=f"federated metrics, session {data.get('session_id', '')}")


def progress_html(done: int, total: int) -> str:
    """A thin progress bar that renders without any JavaScript."""
    share = 0.0 if total <= 0 else max(0.0, min(1.0, done / total))
    return ('<div style="display:inline-block;width:160px;height:8px;vertical-align:middle;'
            'background:var(--jp-layout-color3,#e5e7eb);border-radius:4px;overflow:hidden">'
            f'<div style="width:{share * 100:.0f}%;height:100%;'
            'background:var(--jp-brand-color1,#2563eb)"></div></div>'
            f" round {done}/{total}")


def clients_rows(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per joined client: where it runs, on what, how far it got and its last error."""
    rows = []
    for c in info.get("clients") or []:
        progress = c.get("progress")
        rows.append({"client": c.get("client_id"), "runner": c.get("runner"),
                     "datasets": ", ".join(f"{k}={v}" for k, v in (c.get("datasets") or {}).items()),
                     "status": c.get("status", ""), "round": c.get("round"),
                     "step": f"{c.get('step') or ''} {progress:.0%}".strip()
                     if isinstance(progress, (int, float)) else (c.get("step") or ""),
                     "error": c.get("error") or ""})
    return rows


def session_summary_html(info: Mapping[str, Any], latest: Mapping[str, Any]) -> str:
    """Status, progress, error and clients of a session from its ``info()`` and latest metrics."""
    parts = [f'<div class="jp-Fed-session" style="font-size:13px">'
             f"<b>{html.escape(str(info.get('package', '')))}</b> session "
             f"<code>{html.escape(str(info.get('id', '')))}</code> "
             f"{html.escape(repr(info.get('name', '')))} — {status_html(str(info.get('status')))}"
             f"<br>{progress_html(int(info.get('current_round') or 0), int(info.get('num_rounds') or 0))}"]
    if latest:
        shown = ", ".join(f"{k} {fmt(v)}" for k, v in latest.items() if k != "num_examples")
        parts.append(f"<br>latest federated metrics: {html.escape(shown)}")
    if info.get("error"):
        parts.append(f'<br><span style="color:#b91c1c">error: {html.escape(str(info["error"]))}</span>')
    parts.append("</div>")
    rows = clients_rows(info)
    if rows:
        for r in rows:
            r["status"] = status_html(str(r["status"]))
        parts.append(table_html(rows, ["client", "runner", "datasets", "status", "round", "step",
                                       "error"], raw=["status"]))
    return "".join(parts)


def session_html(session: Session) -> str | None:
    """``Session._repr_html_``: never raises, falls back to the plain repr if the coordinator is gone."""
    try:
        info = session.info()
        latest = session.metrics().latest()
    except Exception:
        return None
    return session_summary_html(info, latest)
