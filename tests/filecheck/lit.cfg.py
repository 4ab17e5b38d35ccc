# lit configuration: `lit tests/filecheck` runs these files too (pytest runs them via
# tests/test_filecheck.py). RUN lines use geomc and filecheck from the environment.
import lit.formats

config.name = "geomir"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".geo", ".mlir"]
config.excludes = ["lit.cfg.py"]
config.substitutions.append(("filecheck", "python -m filecheck"))
