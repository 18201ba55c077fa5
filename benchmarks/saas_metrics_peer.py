"""The `saas-metrics` package (PyPI), in its own environment: it requires Python 3.12 and OpenMRR runs on 3.11.

`ensure_environment` makes `benchmarks/.peers-venv` (gitignored) from `benchmarks/peers-requirements.txt`
with a Python 3.12 found on the machine (`python3.12` on PATH or a pyenv 3.12 build). Without one it
falls back to this interpreter: saas-metrics 0.2.1 alone with `pip --ignore-requires-python --no-deps`
(its code runs on 3.11: the same customers.csv as on 3.12, checked by hand), then its dependencies as
its metadata states them, resolved for 3.11 (the pinned numpy has no 3.11 build). The results name the
Python that ran it.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / "benchmarks" / ".peers-venv"
REQUIREMENTS = ROOT / "benchmarks" / "peers-requirements.txt"
PYTHON_MINOR = (3, 12)


class SaasMetricsError(Exception):
    """The environment could not be made, or saas-metrics refused the data."""


def _version_of(python: str) -> tuple[int, int] | None:
    completed = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                               text=True, check=False)
    return tuple(map(int, completed.stdout.split())) if completed.returncode == 0 else None


def find_python312() -> str | None:
    """A Python 3.12 interpreter on this machine, or None."""
    pyenv_builds = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python3.12")))
    candidates = [shutil.which("python3.12"), *pyenv_builds]
    return next((c for c in candidates if c and _version_of(c) == PYTHON_MINOR), None)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_environment(venv: Path = DEFAULT_VENV) -> Path:
    """The venv's python, the venv made first when it has no saas-metrics yet."""
    python = venv_python(venv)
    if python.exists() and subprocess.run([str(python), "-c", "import saas_metrics"], capture_output=True,
                                          check=False).returncode == 0:
        return python
    interpreter = find_python312()
    print(f"making {venv} with {interpreter or sys.executable}"
          f"{'' if interpreter else ' (no Python 3.12 here: --ignore-requires-python)'}", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    _step([interpreter or sys.executable, "-m", "venv", "--clear", str(venv)])
    if interpreter:
        _step([*pip, "-r", str(REQUIREMENTS)])
        return python
    pinned = next(line for line in REQUIREMENTS.read_text().splitlines() if line.startswith("saas-metrics=="))
    _step([*pip, "--ignore-requires-python", "--no-deps", pinned])
    requirements = _step([str(python), "-c", "import importlib.metadata as m; print(*(r for r in"
                          " m.requires('saas-metrics') if 'extra ==' not in r), sep='\\n')"]).splitlines()
    _step([*pip, *requirements])
    return python


def _step(command: list[str]) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SaasMetricsError(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
    return completed.stdout


def describe(python: Path) -> str:
    """`X on Python Y`: the version of saas-metrics and of its interpreter, for the results."""
    completed = subprocess.run([str(python), "-c", "import importlib.metadata as m, platform;"
                                " print(m.version('saas-metrics'), platform.python_version())"],
                               capture_output=True, text=True, check=True)
    version, python_version = completed.stdout.split()
    return f"{version} on Python {python_version}"


def run_report(python: Path, tape: Path, out: Path) -> float:
    """Seconds of `saas-metrics report TAPE --allow-warnings --out OUT` (reading the CSV, its checks, the
    waterfall and metrics, and writing its tables: `out/customers.csv` is MRR per customer and month end).

    --allow-warnings: its checks warn (and stop) on a month with no billing at all, which a small history
    can have; they are printed in the error if the run fails."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(python.parent / "saas-metrics"), "report", str(tape), "--allow-warnings", "--out", str(out)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0 or not (out / "customers.csv").exists():
        raise SaasMetricsError(f"saas-metrics report failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return seconds
