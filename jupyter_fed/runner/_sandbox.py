"""The walls around a builder's approved code, raised inside its own one-shot worker process.

A custom step runs in a worker forked for it alone (``workers.WorkerPool.spawn``), which confines
itself before it starts a thread or reads a frame, and runs exactly one step:

1. **No network** (kernel): new user and network namespaces (``unshare``); the namespace has no
   interface but a loopback that is down, so every new socket to anything — the coordinator, the
   runner's port, the internet — fails. The socket pair to the runner, made before, keeps working.
2. **Files** (kernel, Landlock, where the kernel has it): read-only access to the Python
   installation, system libraries and the granted dataset's file; read-write only to a private
   temporary folder; nothing else (not the runner's home, not other datasets, not ``/etc``).
   ``no_new_privs`` is set, signals to processes outside the sandbox are refused (Landlock ABI 6).
3. **A reporting layer** (Python audit hook, :func:`watch`): sockets, subprocesses, ``os.system``,
   ``exec``, ``fork``, ``kill``, ``ctypes`` and opening a file outside the allowed paths are
   refused *and reported at once* to the runner, which stops the worker and fails the step with
   ``sandbox_violation`` — even if the code catches the exception.
4. **Environment**: variables other than a few harmless ones (locale, threads) are removed, so
   credentials in the runner's environment are not readable.

Time and memory are the runner's step limits, enforced from outside as for every worker.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_fed.errors import FedError

__all__ = ["SandboxViolation", "confine", "watch"]

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS = 38
_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
# Landlock filesystem rights (linux/landlock.h)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | (1 << 14) | (1 << 15)  # + truncate, ioctl_dev
READ = EXECUTE | READ_FILE | READ_DIR
KEEP_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED")


class SandboxViolation(FedError):
    """Custom code tried something its sandbox forbids (a socket, a file outside its dataset, a
    subprocess, …)."""

    code = "sandbox_violation"
    status = 403


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def isolate_network() -> None:
    """New user + network namespaces: no route to anything. Call while single-threaded."""
    uid, gid = os.getuid(), os.getgid()
    if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        raise _fail("unshare(CLONE_NEWUSER | CLONE_NEWNET)")
    # Map our own ids so files keep their owner as seen from inside (nothing else is mapped).
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none."""
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0
    abi = _libc().syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def restrict_files(read: list[Path], write: list[Path]) -> int:
    """Landlock: only ``read`` (read-only) and ``write`` (everything) beneath those paths; returns
    the ABI used (0: the kernel has no Landlock, nothing was restricted)."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    create, add, restrict = _SYSCALLS[platform.machine()]
    libc = _libc()
    handled = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        handled |= 1 << 13  # refer
    if abi >= 3:
        handled |= 1 << 14  # truncate
    if abi >= 5:
        handled |= 1 << 15  # ioctl_dev
    attr = struct.pack("QQQ", handled, 0, 0b11 if abi >= 6 else 0)  # scoped: abstract unix, signal
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buf = ctypes.create_string_buffer(attr[:size], size)
    fd = libc.syscall(create, buf, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise _fail("landlock_create_ruleset")
    try:
        for paths, rights in ((read, READ), (write, handled)):
            for path in paths:
                try:
                    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # a path this machine does not have
                try:
                    allowed = rights if os.path.isdir(path) else rights & _FILE_RIGHTS
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed & handled, pfd),
                                                       12)
                    if libc.syscall(add, ctypes.c_int(fd), ctypes.c_int(1), rule,
                                    ctypes.c_uint32(0)) != 0:
                        raise _fail(f"landlock_add_rule({path})")
                finally:
                    os.close(pfd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(restrict, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            raise _fail("landlock_restrict_self")
    finally:
        os.close(fd)
    return abi


def _python_paths(sensitive: list[Path]) -> list[Path]:
    """Where Python and its packages live, minus any folder holding something ``sensitive``
    (a runner home or data root inside the current folder on ``sys.path``)."""
    found = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                         sys.base_exec_prefix)}
    found |= {Path(p).resolve() for p in sys.path if p and os.path.isdir(p)}
    return sorted(p for p in found
                  if not any(s == p or s.is_relative_to(p) for s in sensitive))


SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime",
               "/dev/urandom", "/dev/random", "/dev/zero", "/proc/cpuinfo", "/proc/meminfo",
               "/proc/self/statm", "/sys/devices/system/cpu")


def allowed_paths(box: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """``(read, write)`` paths of a sandbox header (see ``runner.custom_steps``)."""
    sensitive = [Path(p).resolve() for p in box["sensitive"]]
    read = [*_python_paths(sensitive), *(Path(p) for p in SYSTEM_READ),
            *(Path(p).resolve() for p in box["read"])]
    return read, [Path(box["tmp"]).resolve(), Path("/dev/null")]


def confine(box: dict[str, Any]) -> dict[str, Any]:
    """Raise the kernel's walls (network, files) and clear the environment; call first thing in
    a fresh worker, before any thread starts. Returns what was enforced (for the runner's log)."""
    isolate_network()
    read, write = allowed_paths(box)
    abi = restrict_files(read, write)
    for key in list(os.environ):
        if key not in KEEP_ENV:
            del os.environ[key]
    os.environ["TMPDIR"] = box["tmp"]
    os.environ["HOME"] = box["tmp"]
    sys.dont_write_bytecode = True
    os.chdir(box["tmp"])
    return {"network": "namespace", "landlock_abi": abi}


_BLOCKED_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn",
                     "pty.", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
                     "ctypes.cdata", "os.fork", "os.forkpty", "os.kill", "os.killpg",
                     "os.system", "os.startfile", "urllib.Request", "ftplib.", "smtplib.",
                     "http.client.", "webbrowser.", "sys.remote_exec")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def watch(box: dict[str, Any], report: Callable[[str], None]) -> None:
    """Install the audit hook (it cannot be removed: the worker ends after this one step).

    ``report(message)`` is called once, at the first violation, before the exception reaches the
    code that caused it: the runner stops the step even if that code catches the exception.
    """
    read, write = allowed_paths(box)
    read_roots = tuple(str(p) for p in read) + tuple(str(p) for p in write)
    write_roots = tuple(str(p) for p in write)
    reported: list[str] = []

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def refuse(message: str) -> None:
        if not reported:
            reported.append(message)
            report(message)
        raise SandboxViolation(message, "custom code may read only its dataset and compute: "
                               "no network, files elsewhere, subprocesses or native calls")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            if isinstance(path, int) or path is None:
                return  # an already open descriptor
            full = os.path.realpath(os.fsdecode(path))
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if not under(full, write_roots if writes else read_roots):
                refuse(f"custom code tried to {'write' if writes else 'read'} {full}, outside "
                       "its dataset")
        elif event.startswith(_BLOCKED_PREFIXES):
            detail = ""
            if event in ("socket.connect", "socket.sendto", "socket.bind"):
                detail = f" to {args[1]!r}" if len(args) > 1 else ""
            refuse(f"custom code tried {event}{detail}: not allowed in the sandbox")

    sys.addaudithook(hook)
