"""Memoizes wasmtime-py's type lookups for this plugin's own functions.

wasmtime-py reads a function's type through its C API on every call, and a
record's fields, an option's payload, a list's element (and so on) on every
value it converts: about half the cost of passing a record from Python
(BENCHMARKS.md, P4). A component's types never change, so each is read once
and kept on the object that holds it. Only the functions `own` marks are
served a kept type, so other wasmtime users in the process see wasmtime-py
as it is (they may close or change what `Func.type` gives them). Only
public classes of `wasmtime.component` are touched, and only their read-only
type properties.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import Any

from wasmtime.component import (
    EnumType,
    Func,
    FuncType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    VariantType,
)

_MEMOIZED = (
    (FuncType, ("params", "result")),
    (RecordType, ("fields",)),
    (OptionType, ("payload",)),
    (ListType, ("element",)),
    (ResultType, ("ok", "err")),
    (VariantType, ("cases",)),
    (EnumType, ("names",)),
)
_MARK = "_pagerduty_memoized"
_OWN = "_pagerduty_own"


def own(func: Func) -> Func:
    """Marks one of this plugin's functions: its type is read once."""
    func.__dict__[_OWN] = True
    return func


def _memo(name: str, read: Any) -> property:
    slot = f"_pagerduty_{name}"

    def get(self: Any) -> Any:
        try:
            return self.__dict__[slot]
        except KeyError:
            value = self.__dict__[slot] = read(self)
            return value

    return property(get, doc=f"{name}, read once (pytest_pagerduty.type_cache)")


def install() -> None:
    """Idempotent: memoizes the type properties and `Func.type`."""
    if getattr(Func, _MARK, False):
        return
    for cls, names in _MEMOIZED:
        for name in names:
            setattr(cls, name, _memo(name, getattr(cls, name).fget))
    read_type = Func.type

    def func_type(self: Func, store: Any) -> FuncType:
        if not self.__dict__.get(_OWN, False):
            return read_type(self, store)
        # A function's type is fixed by the component, whatever the store.
        try:
            cached: FuncType = self.__dict__["_pagerduty_type"]
        except KeyError:
            cached = self.__dict__["_pagerduty_type"] = read_type(self, store)
        return cached

    Func.type = func_type  # type: ignore[method-assign]
    setattr(Func, _MARK, True)
