"""The one place where jupyter-fed errors become what a notebook user sees from a magic.

IPython prints a ``UsageError`` as a single ``UsageError: ...`` line, without a traceback, which is
what a bad configuration deserves: the user needs the field, the reason and what to do, not our
call stack. Bugs (anything that is not a ``FedError``) still show their traceback.

The subclasses below say which kind of refusal it was; :func:`usage_errors` hands them to IPython
as the plain ``UsageError`` it knows how to show briefly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from IPython.core.error import UsageError

from jupyter_fed.errors import FedError

__all__ = ["CellConfigError", "FedUsageError", "SessionEndedError", "fed_errors", "one_line",
           "usage_errors"]

T = TypeVar("T")


class FedUsageError(UsageError):
    """A refused request, shown as one message: what went wrong and what to do.

    Parameters
    ----------
    message
        What went wrong; names the field or command involved.
    hint
        What to do next; appended after an em dash.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        self.message, self.hint = one_line(message), one_line(hint)
        super().__init__(f"{self.message} — {self.hint}" if self.hint else self.message)


class CellConfigError(FedUsageError):
    """The ``%%federate`` line or body is invalid; the message names the key at fault."""


class SessionEndedError(FedUsageError):
    """The session failed or was cancelled while the cell waited for it."""


def one_line(text: str) -> str:
    """Collapse whitespace so IPython shows the message on one line."""
    return " ".join(str(text).split())


@contextmanager
def fed_errors(what: str = "", cls: type[FedUsageError] = FedUsageError) -> Iterator[None]:
    """Turn a ``FedError`` raised inside the block into ``cls`` with the SDK's message and hint.

    Parameters
    ----------
    what
        A prefix saying which step was refused, e.g. ``"creating the session"``.
    cls
        The ``UsageError`` subclass to raise.
    """
    try:
        yield
    except FedError as exc:
        prefix = f"{what}: " if what else ""
        raise cls(prefix + exc.message, exc.hint) from None



def usage_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Re-raise a ``FedUsageError`` from a magic as a plain ``UsageError`` chained to it.

    IPython (8.x) prints the one-line ``UsageError: ...`` form only when the exception's type *is*
    ``UsageError`` — subclasses get a full traceback. Re-raising at the magic boundary keeps the
    short form without installing a global custom-exception handler (which would clash with other
    libraries' handlers, trio's for one); the precise subclass stays available as ``__cause__``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except FedUsageError as exc:
            raise UsageError(str(exc)) from exc
        except FedError as exc:  # refused on purpose somewhere we did not expect: still a message
            raise UsageError(one_line(str(exc))) from exc

    return wrapper
