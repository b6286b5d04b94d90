"""``LiveMetrics``: one session's curves, progress, clients and failures, updated while it runs."""

from __future__ import annotations

import html
import io
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Dict, Float, Int, List, TraitError, Unicode, validate

from jupyter_fed.client.reprs import clients_rows, fmt, status_html, table_html
from jupyter_fed.wire.models import TERMINAL_STATUSES as TERMINAL

if TYPE_CHECKING:
    from jupyter_fed.client import Session

__all__ = ["LiveMetrics"]

_MAX_POLL_ERRORS = 3


class LiveMetrics(w.VBox):
    """Live view of one session: curves per round, progress, elapsed time, status and a Stop button.

    A daemon thread polls ``session.info()`` (and ``session.metrics()`` when a round ends) every
    ``poll_interval`` seconds and stops by itself once the session has ended, or when
    :meth:`close` or :meth:`stop` is called, so a forgotten panel never leaves a thread behind.
    Client and runner errors are shown in the panel as soon as the coordinator reports them.

    Parameters
    ----------
    session
        The session to follow.
    poll_interval
        Seconds between polls (default 0.5).
    autostart
        Start polling at once (default). With ``False`` call :meth:`start` or :meth:`refresh`.
    """

    poll_interval = Float(0.5, help="Seconds between two polls of the coordinator while the "
                                    "session runs; at least 0.05.")
    status = Unicode("", read_only=True, help="The session's status at the last poll.")
    current_round = Int(0, read_only=True, help="Rounds committed so far.")
    num_rounds = Int(0, read_only=True, help="Rounds the session will run.")
    elapsed = Float(0.0, read_only=True, help="Seconds from the session's start to its end, or "
                                              "to the last poll while it runs.")
    failures = List(Dict(), read_only=True, help="Problems in plain sight: one {'client', 'runner', "
                                         "'error'} per failing client, plus the session's own error "
                                         "(client '').")
    warnings = List(Unicode(), read_only=True, help="Session-level warnings, e.g. a model that "
                                                   "is not learning (collapsed to one class).")

    def __init__(self, session: Session, *, poll_interval: float = 0.5, autostart: bool = True,
                 **kwargs: Any) -> None:
        self.session = session
        self.status_label = w.HTML(value=f"session <code>{html.escape(session.id)}</code>")
        self.elapsed_label = w.Label(value="")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip="cancel the session at every runner",
                                    layout=w.Layout(width="90px"))
        self.progress = w.IntProgress(value=0, min=0, max=1, description="rounds",
                                      layout=w.Layout(width="60%"))
        self.failure_box = w.HTML(value="", layout=w.Layout(display="none"))
        self.warning_box = w.HTML(value="", layout=w.Layout(display="none"))
        self.clients_table = w.HTML(value="")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="100%"))
        super().__init__(children=[w.HBox([self.status_label, self.elapsed_label, self.stop_button]),
                                   self.progress, self.failure_box, self.warning_box, self.plot,
                                   self.clients_table],
                         **kwargs)
        self.poll_interval = poll_interval
        self.stop_button.on_click(self._on_stop)
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._plotted = (-1, "")
        self._errors = 0
        # The figure is drawn on its own thread from the latest metrics only, so a slow render
        # never delays the numbers, and rounds that end during a render are coalesced.
        self._to_draw: Any = None
        self._final = False
        self._draw_ready = threading.Event()
        self._drawer: threading.Thread | None = None
        if autostart:
            self.start()

    @validate("poll_interval")
    def _valid_interval(self, proposal: Any) -> float:
        if proposal["value"] < 0.05:
            raise TraitError("poll_interval must be at least 0.05 s: the coordinator is polled "
                             "over HTTP, faster polling only adds load")
        return float(proposal["value"])

    # thread -------------------------------------------------------------------------------------
    def start(self) -> LiveMetrics:
        """Start polling in a daemon thread (no-op if it already runs)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._halt.clear()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"jupyter-fed-live-{self.session.id}")
                self._thread.start()
            if self._drawer is None or not self._drawer.is_alive():
                self._drawer = threading.Thread(target=self._draw_loop, daemon=True,
                                                name=f"jupyter-fed-draw-{self.session.id}")
                self._drawer.start()
        return self

    def _draw_loop(self) -> None:
        """Draw the newest pending metrics; end once polling has ended and nothing is pending.

        At most two figures a second while the session runs: drawing holds the interpreter, and
        the round counter, the progress bar and the status line must never wait for it.
        """
        last = 0.0
        while True:
            self._draw_ready.wait(0.25)
            if self.running and not self._final:  # the last figure is drawn at once
                self._halt.wait(max(0.0, last + 0.5 - time.monotonic()))
            self._draw_ready.clear()
            metrics, self._to_draw = self._to_draw, None
            if metrics is None:
                if not self.running:
                    return
                continue
            try:
                png = _render(metrics) if metrics.federated else b""
                if png:
                    self.plot.value = png
            except Exception:  # a figure that fails to draw must not stop the live view
                pass
            last = time.monotonic()

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the polling thread to end (it ends with the session) and the last figure to
        be drawn; ``True`` if both did."""
        for t in (self._thread, self._drawer):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)
        return not self.running

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; the panel keeps showing its last state."""
        self._halt.set()
        self.join(timeout)
        drawer = self._drawer
        if drawer is not None and drawer is not threading.current_thread():
            self._draw_ready.set()
            drawer.join(timeout)

    def close(self) -> None:
        """Stop polling and close the panel and its children."""
        self.stop()
        for child in (self.status_label, self.elapsed_label, self.stop_button, self.progress,
                      self.failure_box, self.clients_table, self.plot, *self.children):
            child.close()
        super().close()

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                if self.refresh():
                    return
                self._errors = 0
            except Exception as exc:  # the coordinator may be gone; say so rather than spin
                self._errors += 1
                self.status_label.value = (f"{status_html('error')} cannot read session "
                                           f"{html.escape(self.session.id)}: "
                                           f"{html.escape(getattr(exc, 'message', str(exc)))}")
                if self._errors >= _MAX_POLL_ERRORS:
                    return
            # Long-poll for the next round (or the end) instead of sleeping: a round shows the
            # moment it is committed; poll_interval only bounds how long one poll is held.
            try:
                self.session._backend.wait(self.session.id, max(self.poll_interval, 5.0),
                                           after_round=self.current_round)
            except Exception:
                self._halt.wait(self.poll_interval)

    # updating -----------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Poll once and update every part of the panel; returns ``True`` once the session ended."""
        with self._lock:
            info = self.session.info()
            status, rnd, total = info["status"], int(info["current_round"]), int(info["num_rounds"])
            done = status in TERMINAL
            latest: dict[str, Any] = {}
            metrics = None
            if (rnd, status) != self._plotted:
                metrics = self.session.metrics()
                latest = metrics.latest()
            failures = _failures(info)
            with self.hold_trait_notifications():
                self.set_trait("status", status)
                self.set_trait("current_round", rnd)
                self.set_trait("num_rounds", total)
                self.set_trait("elapsed", _elapsed(info))
                self.set_trait("failures", failures)
                self.set_trait("warnings", list(info.get("warnings") or []))
            self.progress.max = max(total, 1)
            self.progress.value = min(rnd, total)
            self.progress.bar_style = {"completed": "success", "failed": "danger"}.get(status, "")
            shown = ", ".join(f"{k} {fmt(v)}" for k, v in latest.items() if k != "num_examples")
            self.status_label.value = (
                f"session <code>{html.escape(info['id'])}</code> {status_html(status)} · round "
                f"{rnd}/{total}" + (f" · {html.escape(shown)}" if shown else ""))
            self.elapsed_label.value = f"{self.elapsed:.1f} s"
            self.stop_button.disabled = done
            self.clients_table.value = table_html(
                clients_rows(info), ["client", "runner", "status", "round", "step", "error"])
            self._show_failures(failures)
            self._show_warnings(self.warnings)
            if metrics is not None:  # hand the figure to the drawing thread, newest wins
                self._plotted = (rnd, status)
                self._final = done
                self._to_draw = metrics
                self._draw_ready.set()
            return done

    def _show_failures(self, failures: list[dict[str, str]]) -> None:
        if not failures:
            self.failure_box.layout.display = "none"
            return
        items = "".join(f"<li>{_who(f)}{html.escape(f['error'])}</li>" for f in failures)
        self.failure_box.value = (f'<div class="jp-Fed-failures" style="color:#b91c1c">'
                                  f"<b>problems</b><ul style='margin:2px 0'>{items}</ul></div>")
        self.failure_box.layout.display = ""

    def _show_warnings(self, warnings: list[str]) -> None:
        if not warnings:
            self.warning_box.layout.display = "none"
            return
        items = "".join(f"<li>{html.escape(m)}</li>" for m in warnings)
        self.warning_box.value = (f'<div class="jp-Fed-warnings" style="color:#b45309">'
                                  f"<b>warnings</b><ul style='margin:2px 0'>{items}</ul></div>")
        self.warning_box.layout.display = ""

    def _on_stop(self, _: Any) -> None:
        try:
            self.session.cancel()
        except Exception as exc:
            self.status_label.value = (f"{status_html('error')} could not cancel: "
                                       f"{html.escape(getattr(exc, 'message', str(exc)))}")
            return
        self.refresh()


def _render(metrics: Any) -> bytes:
    """The metrics figure as PNG bytes (an ``Image`` updates safely from a background thread)."""
    from matplotlib.ticker import MaxNLocator

    fig = metrics.plot()
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _who(failure: dict[str, str]) -> str:
    if not failure["client"]:
        return ""
    return (f"client <b>{html.escape(failure['client'])}</b> on runner "
            f"<b>{html.escape(failure['runner'])}</b>: ")


def _failures(info: dict[str, Any]) -> list[dict[str, str]]:
    out = [{"client": c["client_id"], "runner": c["runner"], "error": c["error"]}
           for c in info.get("clients") or [] if c.get("error")]
    if info.get("error") and info["status"] != "cancelled":
        out.append({"client": "", "runner": "", "error": f"session {info['status']}: {info['error']}"})
    return out


def _elapsed(info: dict[str, Any]) -> float:
    start = info.get("started_at") or info.get("created_at")
    if not start:
        return 0.0
    end = info.get("finished_at")
    t1 = datetime.fromisoformat(end) if end else datetime.now(UTC)
    return max(0.0, (t1 - datetime.fromisoformat(start)).total_seconds())
