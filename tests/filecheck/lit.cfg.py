# lit configuration: `lit tests/filecheck` runs these files too (pytest runs them via
# tests/test_filecheck.py). RUN lines use geomc and filecheck from the environment.
import os

import lit.formats

config.name = "geomir"
# External shell (bash): RUN lines use subshells, $(...) and pipefail-sensitive pipes.
config.test_format = lit.formats.ShTest(execute_external=True, force_execute_external=True)
config.environment["SHELL"] = "/bin/bash"
config.suffixes = [".geo", ".mlir"]
config.excludes = ["lit.cfg.py"]

config.substitutions.append(("%examples", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples"))))
# `geomc` and `filecheck` are the console scripts of the environment lit runs in.
