"""Where a dataset lives: a file on the runner's disk, or an object on object storage.

A registered dataset's location is a local ``Path`` or an :class:`ObjectPath` (``s3://``,
``gs://``, ``az://``) read through fsspec. Both answer ``name``, ``suffix`` and ``stat()``, and
:func:`source` hands pyarrow what it reads either way — the path itself, or an fsspec file
object — so the streaming reader, the table cache and every package read an object exactly as
they read a file: parquet row group by row group, csv block by block.

Which objects may be registered is an allow-list of URI prefixes in the runner's settings
(``data_uri_prefixes``, beside the local ``data_roots``). A URI is judged against it as written,
before any request leaves the runner, so a refused URI says nothing about whether it exists.

Credentials and endpoints come from the runner alone: its environment (the storage library's
own variables, e.g. ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_PROFILE``; ``GOOGLE_APPLICATION_CREDENTIALS``; ``AZURE_STORAGE_CONNECTION_STRING``) and
``storage_options`` in ``runner.json``, by URI prefix. Nothing a model builder sends reaches fsspec.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jupyter_fed.errors import ConfigError, DatasetError, FedError

__all__ = ["EXTRAS", "DataPath", "ObjectPath", "ObjectStat", "allowed_uri", "file_uri_path",
           "is_uri", "location", "normalize_prefix", "normalize_uri", "open_binary", "options_for",
           "source", "storage_error"]

EXTRAS = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "az": ("adlfs", "azure")}
"""Object-storage scheme → (the fsspec implementation it needs, the jupyter-fed extra that
installs it)."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_uri(text: str | Path) -> bool:
    """True for ``scheme://…`` (object storage or ``file://``), False for a plain path."""
    return isinstance(text, str) and _SCHEME.match(text) is not None


def _split(uri: str) -> tuple[str, str, list[str]]:
    """``(scheme, bucket, key parts)`` of a URI, or ``DatasetError`` saying what is wrong with it.

    Purely lexical: it names the rule broken, never whether anything exists. A URI must be plain:
    no credentials, query or fragment, and no empty, ``.`` or ``..`` parts, so that the string the
    allow-list judges is the object that is read.
    """
    found = _SCHEME.match(uri)
    if found is None:
        raise DatasetError(f"{uri} is not a URI", "write scheme://bucket/path/file.parquet")
    scheme, rest = found.group(1).lower(), uri[found.end():]
    bucket, _, key = rest.partition("/")
    # s3://KEY:SECRET@bucket/… (a secret may hold '/', so its '@' may come after one; a bucket
    # never holds ':' or '@'): refused without repeating it
    if "@" in bucket or ":" in bucket:
        raise ConfigError("a dataset URI must not carry credentials",
                          "give the runner its credentials in its environment or in "
                          "storage_options of runner.json, and register the plain URI")
    if "?" in rest or "#" in rest:
        raise DatasetError(f"{uri}: a dataset URI has no query or fragment",
                           "register the object's plain URI")
    parts = key.split("/") if key else []
    if not _BUCKET.match(bucket) or any(p in ("", ".", "..") for p in parts):
        raise DatasetError(f"{uri} is not a plain object URI",
                           "write scheme://bucket/path/file.parquet, without empty, '.' or '..' "
                           "parts")
    return scheme, bucket, parts


def normalize_prefix(prefix: str) -> str:
    """An allowed prefix as the runner compares it: ``s3://bucket/folder/`` (lower-case scheme,
    one trailing slash, so ``s3://b/data`` does not also allow ``s3://b/data-private/…``)."""
    scheme, bucket, parts = _split(prefix.rstrip("/"))
    if scheme not in EXTRAS:
        raise ConfigError(f"{prefix}: object storage must be one of "
                          f"{', '.join(s + '://' for s in EXTRAS)} (local folders are data roots)",
                          "write e.g. s3://bucket/prefix/")
    return f"{scheme}://{bucket}/" + "".join(p + "/" for p in parts)


def normalize_uri(uri: str) -> str:
    """A dataset URI as stored and compared: its scheme in lower case, otherwise as written."""
    scheme, bucket, parts = _split(uri)
    return f"{scheme}://{bucket}/" + "/".join(parts)


def allowed_uri(uri: str, prefixes: list[str]) -> str | None:
    """``uri`` normalised if it lies under one of ``prefixes``; ``None`` if under none.

    Lexical only (see :func:`_split`): the answer is the same whether or not the object exists.
    """
    found = normalize_uri(uri)
    scheme = found.split("://", 1)[0]
    if scheme not in EXTRAS:
        return None
    return found if any(found.startswith(normalize_prefix(p)) for p in prefixes) else None


def file_uri_path(uri: str) -> Path:
    """The local path a ``file://`` URI names (``file:///data/x.parquet`` → ``/data/x.parquet``)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise DatasetError(f"{uri} is not a local file URI", "write file:///absolute/path.parquet")
    return Path(unquote(parts.path))


def options_for(uri: str, storage_options: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The runner's fsspec options for ``uri``: those of the longest prefix that covers it."""
    best, found = -1, {}
    for prefix, options in storage_options.items():
        norm = normalize_prefix(prefix)
        if uri.startswith(norm) and len(norm) > best:
            best, found = len(norm), dict(options)
    return found


def location(text: str, storage_options: Mapping[str, Mapping[str, Any]] | None = None
             ) -> Path | ObjectPath:
    """A stored dataset location as an object to read, without touching the network: a
    ``Path``, or an :class:`ObjectPath` carrying the runner's options for its prefix."""
    if not is_uri(text):
        return Path(text)
    if text.lower().startswith("file://"):
        return file_uri_path(text)
    uri = normalize_uri(text)
    return ObjectPath(uri, options_for(uri, storage_options or {}))


@dataclass(frozen=True)
class ObjectStat:
    """An object's size, modification time and ETag: what ``os.stat`` gives of a file, plus the
    ETag, since a time in whole seconds alone could miss a rewrite of the same size."""

    st_size: int
    st_mtime: float
    st_mtime_ns: int
    etag: str


class ObjectPath:
    """A dataset object on object storage, read through fsspec with the runner's options.

    Parameters
    ----------
    uri
        The normalised URI (``s3://bucket/key.parquet``).
    storage_options
        fsspec options from the runner's settings (endpoint, credentials, profile, …); empty to
        let the storage library find credentials in the runner's environment.
    """

    def __init__(self, uri: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        self._stat: ObjectStat | None = None

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:  # never the options: they may hold a secret
        return f"ObjectPath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def protocol(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri)

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    def filesystem(self) -> Any:
        """The fsspec file system (made once per set of options, by fsspec's own cache)."""
        import fsspec

        package, extra = EXTRAS[self.protocol]
        try:
            fsspec.get_filesystem_class(self.protocol)
        except ImportError:
            raise ConfigError(f"reading {self.protocol}:// datasets needs {package} on the runner",
                              f"install it with: pip install 'jupyter-fed[{extra}]'") from None
        try:
            return fsspec.filesystem(self.protocol, **self.storage_options)
        except Exception as exc:
            raise ConfigError(f"the runner's storage_options for {self.uri} are invalid: "
                              f"{type(exc).__name__}", "fix storage_options in runner.json") \
                from None

    def stat(self) -> ObjectStat:
        """Size, time and ETag of the object (one request; kept for this object's lifetime, which
        in a worker is one step). ``DatasetError`` when it is missing or not readable."""
        if self._stat is None:
            fs = self.filesystem()
            try:
                info = fs.info(self.uri)
            except Exception as exc:
                raise storage_error(exc, self.uri) from None
            if info.get("type") == "directory":
                raise DatasetError(f"{self.uri} is not a file", "give a parquet or csv object")
            when = _mtime(info)
            self._stat = ObjectStat(int(info.get("size") or 0), when, int(when * 1e9),
                                    _etag(info))
        return self._stat

    def open(self) -> Any:
        """The object as a binary, seekable file (fsspec's, read in ranges as pyarrow asks)."""
        fs = self.filesystem()
        try:
            return fs.open(self.uri, "rb")
        except Exception as exc:
            raise storage_error(exc, self.uri) from None


DataPath = Path | ObjectPath
"""Where a dataset's rows are: a file under a data root, or an object under an allowed prefix."""


def _mtime(info: Mapping[str, Any]) -> float:
    for key in ("LastModified", "last_modified", "mtime", "updated", "modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def _etag(info: Mapping[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "generation", "version_id"):
        if info.get(key):
            return str(info[key]).strip('"')
    return ""


@contextlib.contextmanager
def source(path: Path | ObjectPath) -> Iterator[Any]:
    """What pyarrow reads ``path`` from: a local path as it is (pyarrow's own file reader), an
    object as an fsspec file, closed when the block ends."""
    if not isinstance(path, ObjectPath):
        yield path
        return
    fh = path.open()
    try:
        yield fh
    finally:
        fh.close()


def open_binary(path: Path | ObjectPath) -> Any:
    """A binary file object of ``path`` (a file, or an object)."""
    return path.open() if isinstance(path, ObjectPath) else open(path, "rb")


_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "InvalidToken", "AllAccessDisabled", "AuthorizationHeaderMalformed", "403", "401"}


def _names(exc: BaseException) -> set[str]:
    names = {c.__name__ for c in type(exc).__mro__}
    if exc.__cause__ is not None:
        names |= {c.__name__ for c in type(exc.__cause__).__mro__}
    return names


def _service_code(exc: BaseException) -> str | None:
    """The storage service's error code (``SignatureDoesNotMatch``, ``403``) — never its text."""
    for e in (exc, exc.__cause__):
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def storage_error(exc: BaseException, uri: str) -> FedError:
    """What a failed object-storage request tells the custodian: one line and what to check.

    Names the URI, the exception's type and the service's error code; never the library's text.
    """
    if isinstance(exc, FedError):
        return exc
    scheme = uri.split("://", 1)[0]
    where = {"s3": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
             "gs": "GOOGLE_APPLICATION_CREDENTIALS", "az": "AZURE_STORAGE_CONNECTION_STRING "
             "(or AZURE_STORAGE_ACCOUNT_NAME / _KEY)"}.get(scheme, "the storage credentials")
    credentials = (f"check the runner's credentials: {where} in the runner's environment, or "
                   "storage_options for this prefix in runner.json (restart the runner after a "
                   "change)")
    code = _service_code(exc)
    names = _names(exc)
    if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "NoSuchBucket", "404"):
        return DatasetError(f"no file at {uri}", "give the URI of an existing parquet or csv object")
    if isinstance(exc, PermissionError) or code in _DENIED:
        return DatasetError(f"object storage refused access to {uri} ({code or 'forbidden'}): "
                            "wrong or missing credentials, or no permission to read it",
                            credentials)
    if names & {"NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError",
                "ClientAuthenticationError", "CredentialRetrievalError"}:
        return DatasetError(f"no usable credentials to read {uri} ({type(exc).__name__})",
                            credentials)
    if names & {"ConnectionError", "EndpointConnectionError", "ConnectTimeoutError",
                "ClientConnectorError", "ServerTimeoutError", "TimeoutError"}:
        return DatasetError(f"could not reach object storage for {uri} ({type(exc).__name__})",
                            "check the endpoint (AWS_ENDPOINT_URL, or endpoint_url in "
                            "storage_options) and the runner's network")
    return DatasetError(f"could not read {uri}: {type(exc).__name__}"
                        + (f" ({code})" if code else ""),
                        "check that it is a valid parquet or csv object, and the runner's "
                        "credentials for it")
