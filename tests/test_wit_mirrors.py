"""The Python mirrors of the WIT types (`wit.py`) against the component's own
types, as wasmtime-py reports them: a renamed field, a new case or a changed
signature fails here, not in a user's run."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

import pytest
from wasmtime.component import (
    F64,
    S32,
    S64,
    U16,
    U32,
    U64,
    Bool,
    BorrowType,
    ComponentInstanceType,
    EnumType,
    FuncType,
    ListType,
    OptionType,
    OwnType,
    RecordType,
    ResultType,
    String,
    ValType,
    VariantType,
)

from pytest_pagerduty import wit
from pytest_pagerduty.component import FUNCTIONS, INTERFACE, load
from pytest_pagerduty.lowering import result

Handle = wit.Handle
Request = wit.AlertRequest
Headers = tuple[wit.ReplyHeader, ...]

# Every export: what it takes and what it gives, in mirrors.
SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "[static]pager.open": (
        [wit.Settings, Optional[wit.PagerState]],
        result(Handle, wit.SettingsError),
    ),
    "[method]pager.state": ([Handle], wit.PagerState),
    "[method]pager.dry-run": ([Handle], Optional[wit.DryRunReason]),
    "[method]pager.check-marker": (
        [Handle, tuple[wit.MarkerArgument, ...]],
        result(Handle, wit.MarkerError),
    ),
    "[method]pager.preflight": (
        [Handle, Handle],
        result(Optional[wit.DryRunReason], wit.BuildError),
    ),
    "[method]pager.trigger": (
        [Handle, wit.TestFailure, Handle, Optional[wit.Severity], int],
        result(wit.Planned, wit.BuildError),
    ),
    "[method]pager.repeat": (
        [Handle, wit.TestFailure, Handle, Optional[str], Optional[str], int],
        result(wit.Repeat, wit.BuildError),
    ),
    "[method]pager.resolve": (
        [Handle, str, Handle, Optional[str], Optional[str]],
        result(Request, wit.BuildError),
    ),
    "[method]pager.aggregate": ([Handle, tuple[wit.Held, ...], str], tuple[wit.Aggregate, ...]),
    "[method]pager.fallback": (
        [Handle, wit.TestFailure, str, str],
        result(Request, wit.BuildError),
    ),
    "[method]pager.deny": ([Handle, Request, str], wit.Step),
    "[method]pager.send": ([Handle, Request, Optional[wit.Progress]], wit.Step),
    "[method]pager.decide": (
        [Handle, Request, Optional[wit.Progress], int, Headers, str],
        wit.Step,
    ),
    "[method]marker.options": ([Handle], wit.IncidentOptions),
    "ci-variables": ([], tuple[str, ...]),
    "secret-arguments": ([], tuple[str, ...]),
    "failure-text-limit": ([], int),
    "classify-reply": (
        [wit.RequestKind, int, Headers, str],
        result(wit.Delivered, wit.DeliveryFailure),
    ),
}

INTEGERS = (U16, U32, U64, S32, S64)


def exported_functions() -> dict[str, FuncType]:
    loaded = load()
    # Each export comes wrapped; `.ty` is its type (wasmtime-py 50).
    interface = loaded.component.type.exports(loaded.engine)[INTERFACE].ty
    assert isinstance(interface, ComponentInstanceType)
    items = {name: item.ty for name, item in interface.exports(loaded.engine).items()}
    return {name: item for name, item in items.items() if isinstance(item, FuncType)}


def differences(valtype: ValType | None, hint: Any, path: str) -> list[str]:
    """Where the component's type and the mirror disagree."""
    if hint is None:
        return [] if valtype is None else [f"{path}: the component has a value, the mirror none"]
    if valtype is None:
        return [f"{path}: the mirror has a value, the component none"]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        (marker,) = [m for m in hint.__metadata__ if isinstance(m, wit.ResultOf)]
        if not isinstance(valtype, ResultType):
            return [f"{path}: a result in the mirror, {type(valtype).__name__} in the component"]
        ok = differences(valtype.ok, None if marker.ok is type(None) else marker.ok, path + ".ok")
        return ok + differences(valtype.err, marker.err, path + ".err")
    if origin is typing.Union and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        if not isinstance(valtype, OptionType):
            return [f"{path}: an option in the mirror, {type(valtype).__name__} in the component"]
        return differences(valtype.payload, inner, path + "?")
    if origin is typing.Union:
        if not isinstance(valtype, VariantType):
            return [f"{path}: a variant in the mirror, {type(valtype).__name__} in the component"]
        mirrored = {case.TAG: case for case in args}
        cases = dict(valtype.cases)
        if set(mirrored) != set(cases):
            return [f"{path}: cases {sorted(cases)} in the component, {sorted(mirrored)} mirrored"]
        found = []
        for tag, case in mirrored.items():
            payload = typing.get_type_hints(case, include_extras=True).get("payload")
            found += differences(cases[tag], payload, f"{path}.{tag}")
        return found
    if origin is typing.Literal:
        if not isinstance(valtype, EnumType):
            return [f"{path}: an enum in the mirror, {type(valtype).__name__} in the component"]
        same = list(valtype.names) == list(args)
        return [] if same else [f"{path}: {valtype.names} in the component, {args} mirrored"]
    if origin is tuple:
        if not isinstance(valtype, ListType):
            return [f"{path}: a list in the mirror, {type(valtype).__name__} in the component"]
        return differences(valtype.element, args[0], path + "[]")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(valtype, RecordType):
            return [f"{path}: a record in the mirror, {type(valtype).__name__} in the component"]
        hints = typing.get_type_hints(hint, include_extras=True)
        mirrored = {f.name.replace("_", "-"): hints[f.name] for f in dataclasses.fields(hint)}
        fields = dict(valtype.fields)
        if list(mirrored) != list(fields):
            return [f"{path}: fields {list(fields)} in the component, {list(mirrored)} mirrored"]
        return [
            d
            for name, h in mirrored.items()
            for d in differences(fields[name], h, path + "." + name)
        ]
    expected: tuple[type, ...] = {
        str: (String,),
        int: INTEGERS,
        float: (F64,),
        bool: (Bool,),
        Handle: (OwnType, BorrowType),
    }[hint]
    if not isinstance(valtype, expected):
        return [f"{path}: {hint.__name__} in the mirror, {type(valtype).__name__} in the component"]
    return []


def test_every_export_is_mirrored_and_called() -> None:
    exported = set(exported_functions())
    assert exported == set(SIGNATURES)
    assert exported == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_the_mirrors_match_the_components_types(name: str) -> None:
    func = exported_functions()[name]
    params, returned = SIGNATURES[name]
    found = [valtype for _name, valtype in func.params]
    assert len(found) == len(params), f"{name} takes {len(found)} arguments"
    problems = [
        d for i, (v, h) in enumerate(zip(found, params)) for d in differences(v, h, f"{name}({i})")
    ]
    problems += differences(func.result, returned, f"{name} ->")
    assert problems == []


def test_a_changed_mirror_is_caught() -> None:
    """The comparison can fail: a mirror with a field renamed does."""

    @dataclasses.dataclass(frozen=True)
    class Renamed:
        attempt: int
        waited: int

    func = exported_functions()["[method]pager.send"]
    progress = func.params[2][1]
    assert differences(progress, Optional[wit.Progress], "p") == []
    assert differences(progress, Optional[Renamed], "p") != []


def test_each_functions_type_is_read_from_the_c_api_once() -> None:
    """wasmtime-py's type lookups are memoized (type_cache.py): the same
    objects come back, so no call re-reads them."""
    from pytest_pagerduty.component import Instance

    instance = Instance(64)
    func = instance._funcs["[method]pager.trigger"]
    first, again = func.type(instance.store), func.type(instance.store)
    assert first is again
    assert first.params is again.params
    record = first.params[1][1]
    assert isinstance(record, RecordType)
    assert record.fields is record.fields


def test_other_wasmtime_users_get_wasmtime_pys_own_types() -> None:
    """Only the plugin's functions are served a kept type: another user's
    `with func.type(store) as ty:` closes its own copy, never ours."""
    from pytest_pagerduty.component import Instance, load

    instance = Instance(64)
    loaded = load()
    interface = loaded.component.get_export_index(INTERFACE)
    index = loaded.component.get_export_index("ci-variables", interface)
    assert index is not None
    theirs = loaded.linker.instantiate(instance.store, loaded.component).get_func(
        instance.store, index
    )
    assert theirs is not None
    first = theirs.type(instance.store)
    assert theirs.type(instance.store) is not first
    with theirs.type(instance.store) as closed:
        assert closed.result is not None
    assert instance.ci_variables()  # ours still works
