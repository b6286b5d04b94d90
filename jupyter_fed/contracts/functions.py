"""The statistic functions a PSR contract may use, as the SymetryML reference names them.

``C`` is a continuous or binary column, ``B`` a binary one (values 0/1 only). Conditional
functions look at the rows where the second column is 1 (``COND_*``, ``*_WHEN_TRUE``,
``PCT_OF_TRUE``) or 0 (``COMPL_COND_*``, ``*_WHEN_FALSE``, ``PCT_OF_FALSE``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    name: str
    arity: int
    meaning: str
    needs_binary_first: bool = False

    @property
    def conditional(self) -> bool:
        """Whether the second argument splits the rows (so it must be a binary column)."""
        return self.arity == 2 and self.name not in ("COVAR", "LINCORR")


_MOMENTS = {"COUNT": "times the column was seen (rows where a binary column is 1, else rows)",
            "MEAN": "mean",
            "STDDEV": "standard deviation (divides by n)", "VARIANCE": "variance (divides by n)",
            "STDDEV_UNBIASED": "standard deviation (divides by n - 1)",
            "VARIANCE_UNBIASED": "variance (divides by n - 1)"}

FUNCTIONS: dict[str, Function] = {}
for _name, _meaning in _MOMENTS.items():
    FUNCTIONS[_name] = Function(_name, 1, f"the {_meaning} of a column")
    FUNCTIONS[f"COND_{_name}"] = Function(f"COND_{_name}", 2,
                                          f"the {_meaning} of column 1 where column 2 is 1")
    FUNCTIONS[f"COMPL_COND_{_name}"] = Function(f"COMPL_COND_{_name}", 2,
                                                f"the {_meaning} of column 1 where column 2 is 0")
FUNCTIONS.update({
    "ROWS": Function("ROWS", 1, "rows in which the column was present, whatever its value"),
    "COVAR": Function("COVAR", 2, "the covariance of two columns (divides by n)"),
    "LINCORR": Function("LINCORR", 2, "the linear (Pearson) correlation of two columns"),
    "PCT_OF_TRUE": Function("PCT_OF_TRUE", 2, "percentage (0-100) of the rows where column 2 is 1 "
                            "in which column 1 is 1", needs_binary_first=True),
    "PCT_OF_FALSE": Function("PCT_OF_FALSE", 2, "percentage (0-100) of the rows where column 2 is 0 "
                             "in which column 1 is 1", needs_binary_first=True),
    "NUM_OCCURENCE_WHEN_TRUE": Function("NUM_OCCURENCE_WHEN_TRUE", 2, "rows where both columns are 1",
                                        needs_binary_first=True),
    "NUM_OCCURENCE_WHEN_FALSE": Function("NUM_OCCURENCE_WHEN_FALSE", 2, "rows where column 1 is 1 "
                                         "and column 2 is 0", needs_binary_first=True),
    "MEAN_WHEN_TRUE": Function("MEAN_WHEN_TRUE", 2, "the mean of column 1 where column 2 is 1"),
    "MEAN_WHEN_FALSE": Function("MEAN_WHEN_FALSE", 2, "the mean of column 1 where column 2 is 0"),
})

ALIASES = {"NUM_OCCURRENCE_WHEN_TRUE": "NUM_OCCURENCE_WHEN_TRUE",
           "NUM_OCCURRENCE_WHEN_FALSE": "NUM_OCCURENCE_WHEN_FALSE",
           "CORR": "LINCORR", "COVARIANCE": "COVAR"}
"""Spellings accepted besides the reference's (which writes OCCURENCE with one R)."""


def lookup(name: str) -> Function | None:
    """The function called ``name`` (any case, aliases included), or ``None``."""
    key = name.upper()
    return FUNCTIONS.get(ALIASES.get(key, key))
