"""benchmarks/device_run.sh runs on a GPU machine CI never sees, and device time is
scarce: what a simulation found wrong there (/tmp/site install, no editable finder) is
pinned here by reading the script.

* ``python3 -m pytest`` from the repository root put the root first on sys.path, so
  ``import geomir`` found the repository's geomir/ (no backends/, frontends/, passes/:
  pyproject maps them in) instead of the install in /tmp/site: every GPU test failed to
  collect. ``-P`` leaves the root off.
* ``pip install --target`` without ``--upgrade`` keeps what a previous call on the warm
  machine installed: the benchmark would have timed the old geomir.
"""

from __future__ import annotations

import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_run.sh"
COMMANDS = [line.strip() for line in SCRIPT.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_install_into_the_target_replaces_what_is_there():
    installs = [c for c in COMMANDS if re.search(r"pip install .*--target", c)]
    assert len(installs) == 2
    assert all("--upgrade" in c.split() for c in installs), installs


def test_pytest_runs_without_the_repository_root_on_sys_path():
    runs = [c for c in COMMANDS if "-m pytest" in c]
    assert runs and all(re.match(r"python3 -P -m pytest\b", c) for c in runs), runs
