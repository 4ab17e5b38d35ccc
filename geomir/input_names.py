"""The source names of a function's inputs.

xDSL keeps a value's name only as a hint and drops a ``_<digits>`` ending (it numbers
values that way when it prints them): the inputs of ``model M(x_1: R[2], x: R[2])`` are
both hinted ``x``, and a backend naming them from the hints wrote ``def M(params, x, x_1)``,
the two inputs swapped. A function input whose hint cannot hold its name keeps the name as
an argument attribute, ``{geo.name = "x_1"}`` (printed, parsed back, and used by
geomir.ir's printer to spell the argument); backends and reports read input names here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.dialects import builtin, func
from xdsl.ir import BlockArgument, SSAValue

ATTR = "geo.name"


def name_inputs(f: func.FuncOp, names: Sequence[str], hint: Callable[[str], str | None]) -> None:
    """Give ``f``'s inputs the source ``names``: hints from ``hint(name)``, and the
    attribute where the hint is not the name."""
    args = f.body.block.args
    assert len(names) == len(args)
    for arg, name in zip(args, names):
        arg.name_hint = hint(name)
    rename_inputs(f, names)


def rename_inputs(f: func.FuncOp, names: Sequence[str | None]) -> None:
    """``f``'s inputs are named ``names`` (None: by their hints), their hints unchanged."""
    _store(f, [name if name != arg.name_hint else None for arg, name in zip(f.body.block.args, names)])


def input_names(f: func.FuncOp) -> list[str | None]:
    """Each input's source name: its attribute, else its hint (None: unnamed)."""
    return [given if given is not None else arg.name_hint for arg, given in zip(f.body.block.args, _attributes(f))]


def _attributes(f: func.FuncOp) -> list[str | None]:
    """Each input's name attribute (None: none; a malformed ``arg_attrs`` is
    geomir.verify's to report)."""
    args = f.body.block.args
    attrs = f.arg_attrs.data if isinstance(f.arg_attrs, builtin.ArrayAttr) else ()
    names = []
    for i in range(len(args)):
        d = attrs[i] if i < len(attrs) else None
        name = d.data.get(ATTR) if isinstance(d, builtin.DictionaryAttr) else None
        names.append(name.data if isinstance(name, builtin.StringAttr) else None)
    return names


def copy_input_names(source: func.FuncOp, target: func.FuncOp, extra: Sequence[str] = ()) -> None:
    """``target``'s inputs are ``source``'s, then one per ``extra`` name (e.g. the
    direction ``v`` of a derivative helper, ``v_`` while an input is named ``v``, as a
    ``derive`` does): the same hints and names."""
    for arg, old in zip(target.body.block.args, source.body.block.args):
        arg.name_hint = old.name_hint
    names = input_names(source)
    taken = set(names)
    for arg, name in zip(target.body.block.args[len(names):], extra):
        while name in taken:
            name += "_"
        arg.name_hint = name
        taken.add(name)
    rename_inputs(target, [*names, *[None] * len(extra)])


def source_name(value: SSAValue) -> str | None:
    """The attribute name of ``value`` if it is an input of a function that has one."""
    if not isinstance(value, BlockArgument):
        return None
    region = value.block.parent
    f = region.parent if region is not None else None
    if not isinstance(f, func.FuncOp) or f.arg_attrs is None or value.block is not region.blocks[0]:
        return None
    return _attributes(f)[value.index]


def pin_names(f: func.FuncOp, names: Sequence[str | None]) -> None:
    """Give the inputs named in ``names`` (None: leave) a name attribute."""
    _store(f, list(names), keep=True)


def keep_written_names(f: func.FuncOp, written: Sequence[str | None]) -> None:
    """Inputs parsed from IR text as ``written`` (``%x_1``, hinted ``x``) keep those names
    where the hint drops them; a name attribute written in the text wins, and an input the
    text numbers (``%0``) stays unnamed."""
    _store(f, [w if w is not None and arg.name_hint is not None and w != arg.name_hint and given is None else None
               for arg, w, given in zip(f.body.block.args, written, _attributes(f))], keep=True)


def _store(f: func.FuncOp, names: list[str | None], keep: bool = False) -> None:
    """Set (None: remove) each input's name attribute, leaving its other attributes; with
    ``keep``, None leaves the attribute as it is."""
    if f.arg_attrs is not None and not _well_formed(f):
        return  # geomir.verify reports it
    old = [dict(d.data) for d in f.arg_attrs.data] if f.arg_attrs is not None else [{} for _ in names]
    for attrs, name in zip(old, names):
        if name is not None:
            attrs[ATTR] = builtin.StringAttr(name)
        elif not keep:
            attrs.pop(ATTR, None)
    f.arg_attrs = builtin.ArrayAttr([builtin.DictionaryAttr(d) for d in old]) if any(old) else None


def _well_formed(f: func.FuncOp) -> bool:
    attrs = f.arg_attrs
    return (isinstance(attrs, builtin.ArrayAttr) and len(attrs.data) == len(f.body.block.args)
            and all(isinstance(d, builtin.DictionaryAttr) for d in attrs.data))


def arg_attrs_problem(f: func.FuncOp) -> str | None:
    """What is wrong with ``f``'s ``arg_attrs`` (None: nothing): one dictionary per input,
    and a name attribute is a string."""
    if f.arg_attrs is None or not f.body.blocks:
        return None
    if not _well_formed(f):
        return (f"arg_attrs must be an array of one dictionary per input ({len(f.body.block.args)}), "
                f"found {f.arg_attrs}")
    for i, d in enumerate(f.arg_attrs.data):
        name = d.data.get(ATTR)
        if name is not None and not (isinstance(name, builtin.StringAttr) and name.data):
            return f"input #{i}: {ATTR} must be a non-empty string, found {name}"
    return None
