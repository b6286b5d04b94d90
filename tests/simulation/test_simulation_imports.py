"""Ray and Dask stay out of ``import jupyter_fed``, ``%load_ext jupyter_fed`` and the SDK: only
the engine that uses one imports it."""

from __future__ import annotations

import subprocess
import sys

ENGINES = ("ray", "dask", "distributed")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {ENGINES!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_import_jupyter_fed_the_sdk_and_the_magics_load_no_engine() -> None:
    code = ("import jupyter_fed, jupyter_fed.client, jupyter_fed.magics\n"
            "from IPython.testing.globalipapp import start_ipython\n"
            "start_ipython().run_line_magic('load_ext', 'jupyter_fed')")
    assert _loaded_after(code) == set()


def test_the_simulation_package_itself_loads_no_engine_until_one_is_used() -> None:
    assert _loaded_after("import jupyter_fed.simulation, jupyter_fed.simulation.cli") == set()
