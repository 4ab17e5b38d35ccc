"""Source paths are text only where geomir shows them: a path holding a backslash escape or
three quotes made the generated module a SyntaxError (geomc wrote it, exit 0); a one-line
path with '{' was read as .geo text; a path with bytes that are not UTF-8 crashed compile
and geomc (exit 3); a cache entry of non-UTF-8 bytes failed every later compile."""

from __future__ import annotations

import os
import sys

import pytest

import geomir
from geomir.driver import main

torch = pytest.importorskip("torch")

PROGRAM = "model F(x: R[2]) -> R[2] {\n  return tanh(x)\n}\n"


@pytest.mark.parametrize("folder", ["d\\x1", 'q"""q', "tr\\N", "run{1}"])
def test_any_folder_name_compiles(tmp_path, folder):
    path = tmp_path / folder / "m.geo"
    path.parent.mkdir()
    path.write_text(PROGRAM)
    for source in (path, str(path)):
        m = geomir.compile(source, target="torch", cache_dir=tmp_path / "cache")
        assert m.F({}, torch.zeros(1, 2)).shape == (1, 2)
    out = tmp_path / "out.py"
    assert main([str(path), "--target=jax", "-o", str(out)]) == 0
    compile(out.read_text(), str(out), "exec")  # the written module parses


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux")
def test_a_path_that_is_not_utf8_compiles_and_prints_with_locations(tmp_path, capsys):
    folder = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"\xff"))
    os.mkdir(folder)
    path = os.path.join(folder, "m.geo")
    with open(path, "w") as f:
        f.write(PROGRAM)
    assert geomir.compile(path, target="torch", cache_dir=tmp_path / "cache").F({}, torch.zeros(2)).shape == (2,)
    assert main([path, "--emit=ir", "--debug-info"]) == 0
    assert "\\xff/m.geo" in capsys.readouterr().out


def test_a_corrupt_cache_entry_is_rewritten(tmp_path):
    cache = tmp_path / "cache"
    first = geomir.compile(PROGRAM, target="torch", cache_dir=cache)
    entry = next(cache.glob("geomir_generated_torch_*.py"))
    entry.write_bytes(b"\x00\xff\xfe\x80garbage")
    again = geomir.compile(PROGRAM, target="torch", cache_dir=cache)
    assert again.__file__ == first.__file__ and again.F({}, torch.zeros(2)).shape == (2,)


def test_compile_options_of_the_wrong_type_are_usage_errors():
    """check_finite="False" turned checking on; passes=5 was a raw TypeError."""
    from geomir.diagnostics import UsageError

    with pytest.raises(UsageError, match="check_finite must be True or False, found 'False'"):
        geomir.compile(PROGRAM, target="torch", check_finite="False")
    for passes in (5, b"cse", ["cse", 3]):
        with pytest.raises(UsageError, match="passes must be a string"):
            geomir.compile(PROGRAM, target="torch", passes=passes)


@pytest.mark.parametrize("cache_dir, message", [
    ("", "cache_dir is empty"),
    (5, "cache_dir must be a directory path (str or os.PathLike) or None, found int"),
])
def test_a_cache_dir_that_is_no_directory_is_a_usage_error(tmp_path, monkeypatch, cache_dir, message):
    """"" wrote the generated module into the working directory; 5 was a raw TypeError."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(geomir.GeomirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        geomir.compile(PROGRAM, target="torch", cache_dir=cache_dir)
    assert os.listdir(tmp_path) == []
