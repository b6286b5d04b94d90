"""What the vertical packages' integration tests share: linked silos of generated vertical data on
two real runners, a recording relay in front of one of them, and the record linkage itself."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

import jupyter_fed
from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.data import write_vertical
from jupyter_fed.demo.federation import LocalFederation

__all__ = ["NOISE_A", "Recorder", "add_swapped", "link", "recorded_client", "vertical_federation"]

NOISE_A = [f"n{i}" for i in range(5)]
"""The pure-noise columns :func:`add_swapped` gives ``ra``."""


class Recorder:
    """A loopback TCP relay that keeps every byte the coordinator sends to one runner."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.sent = bytearray()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def tensors(self) -> list[dict[str, np.ndarray]]:
        """Every safetensors payload of the recorded task requests."""
        from safetensors.numpy import load

        with self.lock:
            raw = bytes(self.sent)
        out = []
        # the part's header lines, in whatever order the client writes them, end at a blank line
        for m in re.finditer(rb'filename="tensors.safetensors"[^\r]*\r\n(?:[^\r\n]+\r\n)*\r\n',
                             raw):
            start = m.end()
            header = int.from_bytes(raw[start:start + 8], "little")
            meta_end = start + 8 + header
            meta = json.loads(raw[start + 8:meta_end])
            end = meta_end + max((v["data_offsets"][1] for k, v in meta.items()
                                  if k != "__metadata__"), default=0)
            out.append(load(raw[start:end]))
        return out


def add_swapped(root: Path, silos: dict[str, dict[str, Any]]) -> None:
    """``extra`` for :func:`vertical_federation`: ``ra_swap_*`` holds only pure noise
    (:data:`NOISE_A`), ``rb_swap_*`` the label and ra's signal columns of the people both
    parties hold (so the label party holds the signal and the passive party the noise)."""
    import pandas as pd

    rng = np.random.default_rng(99)
    for role in ("train", "test"):
        a = pd.read_parquet(root / f"ra_{role}.parquet")
        b = pd.read_parquet(root / f"rb_{role}.parquet")
        noise = pd.DataFrame({"patient_id": a["patient_id"]})
        for c in NOISE_A:
            noise[c] = rng.normal(size=len(a))
        keyed = a.assign(key=a["patient_id"].str.lower()).drop(columns="patient_id")
        signal = b[["patient_id", "y"]].merge(keyed, left_on="patient_id", right_on="key"
                                              ).drop(columns="key")
        for runner, frame in (("ra", noise), ("rb", signal)):
            path = root / f"{runner}_swap_{role}.parquet"
            frame.to_parquet(path, index=False)
            silos[runner][f"{runner}_swap_{role}"] = {"path": path, "id_columns": ["patient_id"]}


@contextmanager
def vertical_federation(data: Path, homes: Path, rows: int, test_rows: int,
                        extra: Callable[[Path, dict[str, dict[str, Any]]], None] | None = None
                        ) -> Iterator[LocalFederation]:
    """Runners ``ra`` (x0…x7) and ``rb`` (x8…x14 and y) holding ``ra_train``/``ra_test`` and
    ``rb_train``/``rb_test``, 90% of each party's people shared; rb's ids are lower-cased (the
    linkage normalises them). ``extra(data, silos)`` may add datasets before the runners start."""
    paths = write_vertical(data / "gen", rows=rows, parties=2, overlap=0.9, test_rows=test_rows)
    silos: dict[str, dict[str, Any]] = {"ra": {}, "rb": {}}
    for party, runner in (("party0", "ra"), ("party1", "rb")):
        for role in ("train", "test"):
            table = pq.read_table(paths[party][role])
            if runner == "rb":  # written differently: the linkage normalises it
                table = table.set_column(0, "patient_id", pc.utf8_lower(table.column(0)))
            path = data / f"{runner}_{role}.parquet"
            pq.write_table(table, path)
            silos[runner][f"{runner}_{role}"] = {"path": path, "id_columns": ["patient_id"]}
    if extra is not None:
        extra(data, silos)
    with LocalFederation(homes, silos, data, insecure_http=True) as fed:
        yield fed


@contextmanager
def recorded_client(fed: LocalFederation, recorder: Recorder, state: Path) -> Iterator[Any]:
    """An embedded coordinator that reaches runner ``ra`` through ``recorder``."""
    runners = fed.runners
    for r in runners:
        if r["name"] == "ra":
            r["url"] = f"http://127.0.0.1:{recorder.port}"
    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=runners)
    try:
        yield client
    finally:
        client.close()


def link(client: Any, suffix: str = "") -> Any:
    """A completed keyed-hash linkage of ``ra/ra{suffix}_train`` and ``rb/rb{suffix}_train`` (and
    their test sets) as clients ``a`` and ``b``."""
    ids = {"id_columns": ["patient_id"], "normalise": ["casefold"]}
    prl = client.create_prl_session("link", data_config={"clients": {"a": ids, "b": ids}}
                                    ).start()
    tb = client.task_builder()
    (SessionTaskGroup(prl)
     .add_task(tb.prl(f"ra/ra{suffix}_train", f"ra{suffix}_test", client_name="a"))
     .add_task(tb.prl(f"rb/rb{suffix}_train", f"rb{suffix}_test", client_name="b"))
     .start().wait(120))
    return prl
