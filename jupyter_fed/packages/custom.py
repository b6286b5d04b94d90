"""A model builder's own package: source files, their hash, and loading them from memory.

A custom package is a folder laid out as the built-ins are (``local.py`` with the runner's steps,
``plan.py`` with the coordinator's plan, optionally ``config.py`` and ``model.py``, and an
optional ``package.json`` manifest). It travels and is stored as **source text only**: a
:class:`CodeBundle` maps relative paths to text, and its ``digest`` is the SHA-256 of a canonical
encoding of them, so one changed byte is another package. Its public name is
``custom:<name>@<digest>``: sessions, tasks and approvals name the exact code they mean.

Nothing here executes the builder's code to learn about it: the manifest is read as JSON, and
what it leaves out (step names, the plan's and model's classes) is found by parsing the source
with :mod:`ast`. The code runs only where :func:`load_module` is called: in the builder's own
coordinator (the plan), kernel (the model), and at a runner in its sandboxed worker (the steps),
after a custodian approved that digest.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.util
import json
import linecache
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.registry import Notebook, PackageSpec, register

__all__ = ["PREFIX", "CodeBundle", "Manifest", "custom_name", "is_custom", "load_module",
           "parse_custom_name", "register_bundle"]

PREFIX = "custom:"
SUFFIXES = (".py", ".json", ".yaml", ".yml", ".md", ".txt")
"""The only files a bundle may hold: source and text. No binaries, no pickles."""
MAX_FILES = 64
MAX_BYTES = 512 * 1024
"""Largest total size of a bundle's files (UTF-8 bytes)."""
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,3}$")


def custom_name(name: str, digest: str) -> str:
    """``custom:<name>@<digest>``: the package name a session or task uses."""
    return f"{PREFIX}{name}@{digest}"


def is_custom(package: str) -> bool:
    return str(package).lower().startswith(PREFIX)


def parse_custom_name(package: str) -> tuple[str, str]:
    """``(name, digest)`` of ``custom:<name>@<digest>``; ``ConfigError`` naming the field else."""
    body = str(package)[len(PREFIX):] if is_custom(package) else ""
    name, sep, digest = body.partition("@")
    if not sep or not NAME_RE.match(name) or not DIGEST_RE.match(digest):
        raise ConfigError(f"invalid custom package name {package!r}",
                          "use custom:<name>@<sha256>, as client.submit_code(...) returns it",
                          details=[{"field": "package_name", "error": "invalid custom name"}])
    return name, digest


@dataclass(frozen=True)
class Manifest:
    """What a bundle declares (``package.json``) or its source shows (parsed, never run)."""

    steps: tuple[str, ...]
    plan: str
    model: str = ""
    roles: tuple[str, ...] = ("train", "test")
    description: str = ""
    data_keys: tuple[str, ...] = ("predictors", "target")
    rounds: bool = True


@dataclass(frozen=True)
class CodeBundle:
    """A custom package's source files (relative path → text), checked on construction.

    Parameters
    ----------
    name
        Lower-case name (letters, digits, ``-``, ``_``); the package is ``custom:<name>@<digest>``.
    files
        Relative POSIX paths → UTF-8 text; only ``.py``, ``.json``, ``.yaml``, ``.md`` and
        ``.txt`` files, at most 64 files and 512 KiB in all. ``local.py`` and ``plan.py`` are
        required.
    """

    name: str
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not NAME_RE.match(self.name):
            problems.append({"field": "name", "error": "use lower-case letters, digits, '-' and "
                             "'_', starting with a letter (at most 64)"})
        if len(self.files) > MAX_FILES:
            problems.append({"field": "files", "error": f"more than {MAX_FILES} files"})
        total = 0
        for path, text in self.files.items():
            if not isinstance(text, str) or not isinstance(path, str):
                problems.append({"field": f"files.{path}", "error": "must be text"})
                continue
            total += len(text.encode("utf-8", "surrogatepass"))
            if not _PATH_RE.match(path) or ".." in PurePosixPath(path).parts:
                problems.append({"field": f"files.{path}", "error": "not a plain relative path"})
            elif not path.endswith(SUFFIXES):
                problems.append({"field": f"files.{path}", "error": "only .py, .json, .yaml, "
                                 ".md and .txt files may be submitted"})
            elif "\x00" in text:
                problems.append({"field": f"files.{path}", "error": "binary content"})
        if total > MAX_BYTES:
            problems.append({"field": "files", "error": f"{total} bytes, more than {MAX_BYTES}"})
        for needed in ("local.py", "plan.py"):
            if needed not in self.files:
                problems.append({"field": f"files.{needed}", "error": "missing"})
        if problems:
            raise ConfigError("invalid custom package: " + "; ".join(
                f"{p['field']}: {p['error']}" for p in problems),
                "submit a folder of text files with local.py and plan.py", details=problems)

    @classmethod
    def from_folder(cls, folder: Path | str, name: str | None = None) -> CodeBundle:
        """Read ``folder``'s source files (caches and hidden files skipped)."""
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"{root} is not a folder", "pass the folder of your package")
        files = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_dir() or any(p.startswith((".", "__pycache__")) for p in rel.split("/")):
                continue
            if not rel.endswith(SUFFIXES):
                raise ConfigError(f"{rel}: only source and text files may be submitted",
                                  "remove data, weights and binaries from the folder")
            files[rel] = path.read_text(encoding="utf-8")
        return cls(name or root.name.lower().replace(" ", "_"), files)

    @classmethod
    def from_torch(cls, module: Path | str, name: str | None = None) -> CodeBundle:
        """The torch form: ``module`` (a ``.py`` file) defines ``Model(nn.Module)`` (its
        constructor takes ``model_config["model_args"]``) and ``load(dataset, data_config)``
        returning ``(x, y)`` tensors, optionally ``loss(output, y)``; it becomes ``user_model.py``
        of jupyter-fed's torch template (``packages/_torch_template``: FedAvg of mini-batch SGD,
        ``lr``, ``epochs``, ``batch_size`` and ``seed`` in ``model_config``). The custodian
        reviews the template's files with the module: all of it is the package."""
        path = Path(module)
        template = Path(__file__).parent / "_torch_template"
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(template.iterdir())
                 if p.suffix in (".py", ".json")}
        files["user_model.py"] = path.read_text(encoding="utf-8")
        return cls(name or path.stem.lower(), files)

    @classmethod
    def from_path(cls, source: Path | str, name: str | None = None) -> CodeBundle:
        """A package folder (:meth:`from_folder`) or a torch module file (:meth:`from_torch`)."""
        path = Path(source)
        return cls.from_torch(path, name) if path.is_file() and path.suffix == ".py" \
            else cls.from_folder(path, name)

    @property
    def digest(self) -> str:
        """SHA-256 over the files, sorted by path, each as length-prefixed path and text."""
        h = hashlib.sha256(b"jupyter-fed custom package v1\n")
        for path in sorted(self.files):
            for part in (path.encode(), self.files[path].encode("utf-8", "surrogatepass")):
                h.update(len(part).to_bytes(8, "big"))
                h.update(part)
        return h.hexdigest()

    @property
    def package(self) -> str:
        return custom_name(self.name, self.digest)

    @property
    def module(self) -> str:
        """The (synthetic) import name its files live under: ``jf_custom_<digest prefix>``."""
        return f"jf_custom_{self.digest[:24]}"

    def manifest(self) -> Manifest:
        """``package.json`` where given, the rest read from the source's syntax tree."""
        declared: dict[str, Any] = {}
        if "package.json" in self.files:
            try:
                declared = json.loads(self.files["package.json"])
            except json.JSONDecodeError as exc:
                raise ConfigError(f"package.json: {exc}", "fix the JSON") from None
            if not isinstance(declared, dict):
                raise ConfigError("package.json must hold an object", "")
        steps = declared.get("steps") or _functions(self._tree("local.py"))
        plan = declared.get("plan") or _plan_class(self._tree("plan.py"))
        model = declared.get("model") or (_first_class(self._tree("model.py"))
                                          if "model.py" in self.files else "")
        if not steps:
            raise ConfigError("local.py defines no step function", "define e.g. "
                              "def fit(ctx, datasets, params, tensors) -> StepResult")
        notebook = declared.get("notebook") or {}
        try:
            return Manifest(steps=tuple(str(s) for s in steps), plan=str(plan),
                            model=str(model), roles=tuple(declared.get("roles") or
                                                          ("train", "test")),
                            description=str(declared.get("description", "")),
                            data_keys=tuple(notebook.get("data_keys", ("predictors", "target"))),
                            rounds=bool(notebook.get("rounds", True)))
        except TypeError as exc:
            raise ConfigError(f"package.json: {exc}", "") from None

    def _tree(self, path: str) -> ast.Module:
        try:
            return ast.parse(self.files[path], filename=path)
        except SyntaxError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: {exc.msg}", "fix the syntax error") from None

    def spec(self) -> PackageSpec:
        """The package's :class:`PackageSpec` (import strings into :attr:`module`; nothing
        imported yet)."""
        m, mod = self.manifest(), self.module
        return PackageSpec(
            name=self.package, steps={s: f"{mod}.local:{s}" for s in m.steps},
            plan=f"{mod}.plan:{m.plan}", model=f"{mod}.model:{m.model}" if m.model else "",
            roles=m.roles, description=m.description or f"custom package {self.name}",
            notebook=Notebook(data_keys=m.data_keys, rounds=m.rounds, predictors=False))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "files": dict(self.files), "digest": self.digest}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CodeBundle:
        bundle = cls(str(data.get("name", "")), dict(data.get("files") or {}))
        if data.get("digest") not in (None, bundle.digest):
            raise ConfigError("the files do not match their digest", "submit them again")
        return bundle


def _functions(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and not n.name.startswith("_")]


def _plan_class(tree: ast.Module) -> str:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and b.id.endswith("Plan")) or
                (isinstance(b, ast.Attribute) and b.attr.endswith("Plan")) for b in node.bases):
            return node.name
    raise ConfigError("plan.py defines no Plan subclass",
                      "define class MyPlan(Plan) with async def run(self, io)")


def _first_class(tree: ast.Module) -> str:
    return next((n.name for n in tree.body if isinstance(n, ast.ClassDef)
                 and not n.name.startswith("_")), "")


# -- loading from memory ------------------------------------------------------------------------
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``jf_custom_<digest>`` and its submodules from a bundle's text, never from disk."""

    def __init__(self) -> None:
        self.bundles: dict[str, CodeBundle] = {}

    def _source(self, fullname: str) -> tuple[str, bool] | None:
        root, _, rest = fullname.partition(".")
        bundle = self.bundles.get(root)
        if bundle is None:
            return None
        base = rest.replace(".", "/")
        if not rest:
            return "__init__.py", True
        if f"{base}.py" in bundle.files:
            return f"{base}.py", False
        if any(p.startswith(f"{base}/") for p in bundle.files):
            return f"{base}/__init__.py", True
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        found = self._source(fullname)
        if found is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=found[1])

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        bundle = self.bundles[module.__name__.partition(".")[0]]
        found = self._source(module.__name__)
        assert found is not None
        rel, is_pkg = found
        text, filename = bundle.files.get(rel, ""), f"<{bundle.package}>/{rel}"
        if is_pkg:
            module.__path__ = []  # submodules come from this finder, not from a folder
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        # the approved (runner) or own (coordinator, kernel) code: running it is the point
        exec(compile(text, filename, "exec"), module.__dict__)


_FINDER = _Finder()
_FINDER_LOCK = threading.Lock()


def load_module(bundle: CodeBundle) -> None:
    """Make ``bundle``'s files importable as :attr:`CodeBundle.module` (in this process)."""
    with _FINDER_LOCK:
        _FINDER.bundles[bundle.module] = bundle
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def register_bundle(bundle: CodeBundle) -> PackageSpec:
    """Register the bundle's package in this process (``get_package(bundle.package)`` finds it)
    and make its files importable: for the coordinator (plan) and the kernel (model)."""
    spec = bundle.spec()
    load_module(bundle)
    return register(spec)
