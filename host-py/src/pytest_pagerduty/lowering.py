"""Conversion between the mirrors in `wit.py` and wasmtime-py's values, driven
by the mirrors' own annotations, so no field is spelt twice.

wasmtime-py passes records as `Record` objects whose attributes are the
kebab-case field names, enums as `str`, options as `None`, variants as
`Variant(tag, payload)`, and resources as `ResourceAny`.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Union

from wasmtime.component import Record, Variant

from . import wit

_NONE = type(None)


def kebab(name: str) -> str:
    return name.replace("_", "-")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, WIT field name, annotation) of a record's mirror."""
    hints = _hints(cls)
    return tuple((f.name, kebab(f.name), hints[f.name]) for f in dataclasses.fields(cls))


def lower(value: Any) -> Any:
    """A mirror (or a plain value) as wasmtime-py takes it."""
    if isinstance(value, wit.Handle):
        return value.resource
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        tag = getattr(cls, "TAG", None)
        if tag is not None:  # a variant's case (every variant the host lowers is tagged)
            payload = getattr(value, "payload", None)
            return Variant(tag, None if payload is None else lower(payload))
        record = Record()
        for attribute, name, _ in _fields(cls):
            setattr(record, name, lower(getattr(value, attribute)))
        return record
    if isinstance(value, (tuple, list)):
        return [lower(v) for v in value]
    return value


# wasmtime-py hands a variant (an option, a result) back untagged when its
# cases' Python classes differ, and as `Variant(tag, payload)` otherwise.
# These follow its rule (`VariantLikeType._tagged`) on the mirrors' hints.

_NO_PAYLOAD: Any = None


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType)


def _result_of(hint: Any) -> wit.ResultOf | None:
    if typing.get_origin(hint) is typing.Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, wit.ResultOf):
                return extra
    return None


def _cases(hint: Any) -> list[tuple[str, Any]]:
    """(tag, payload hint) of a variant, an option or a result."""
    result = _result_of(hint)
    if result is not None:
        return [("ok", result.ok), ("err", result.err)]
    members = typing.get_args(hint)
    if _NONE in members:
        rest = tuple(m for m in members if m is not _NONE)
        return [("none", _NO_PAYLOAD), ("some", rest[0] if len(rest) == 1 else Union[rest])]
    return [(m.TAG, _hints(m).get("payload", _NO_PAYLOAD)) for m in members]


def _is_variant(hint: Any) -> bool:
    return _result_of(hint) is not None or _is_union(hint)


@functools.cache
def _tagged(hint: Any) -> bool:
    seen: set[type] = set()
    for _, payload in _cases(hint):
        classes = _classes(payload)
        if classes & seen:
            return True
        seen |= classes
    return False


@functools.cache
def _classes(hint: Any) -> frozenset[type]:
    """The Python classes wasmtime-py gives for a value of this mirror."""
    if hint is _NO_PAYLOAD:
        return frozenset({object})
    if _is_variant(hint):
        if _tagged(hint):
            return frozenset({Variant})
        return frozenset(c for _, p in _cases(hint) for c in _classes(p))
    if typing.get_origin(hint) is tuple:
        return frozenset({list})
    if typing.get_origin(hint) is typing.Literal or hint is str:
        return frozenset({str})
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return frozenset({Record})
    if isinstance(hint, type):
        return frozenset({hint})
    raise TypeError(f"no WIT mirror: {hint!r}")


def _matches(value: Any, classes: frozenset[type]) -> bool:
    if value is None:
        return object in classes
    return any(c is not object and isinstance(value, c) for c in classes)


def _case(hint: Any, tag: str, payload: Any, payload_hint: Any) -> Any:
    if _result_of(hint) is not None or tag in ("none", "some"):
        return None if payload_hint is _NO_PAYLOAD else lift(payload, payload_hint)
    case = next(m for m in typing.get_args(hint) if getattr(m, "TAG", None) == tag)
    return case() if payload_hint is _NO_PAYLOAD else case(lift(payload, payload_hint))


def lift(value: Any, hint: Any) -> Any:
    """A wasmtime-py value as the mirror `hint` names."""
    if _is_variant(hint):
        cases = _cases(hint)
        if _tagged(hint):
            return _case(hint, value.tag, value.payload, dict(cases)[value.tag])
        for tag, payload_hint in cases:
            if _matches(value, _classes(payload_hint)):
                return _case(hint, tag, value, payload_hint)
        raise TypeError(f"cannot lift {value!r} as {hint}")
    if typing.get_origin(hint) is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        return tuple(lift(v, item) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint(**{a: lift(getattr(value, name), h) for a, name, h in _fields(hint)})
    return value  # str, int, float, bool, Literal


def result(ok: Any, err: Any) -> Any:
    """The mirror of `result<ok, err>`: a union that remembers which is which."""
    return typing.Annotated[Union[ok, err], wit.ResultOf(ok, err)]


def marker_value(value: object) -> wit.MarkerValue:
    """A marker argument's Python value as the component's `marker-value`."""
    if isinstance(value, str):
        return wit.Text(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return wit.TextList(tuple(value))
    if isinstance(value, int) and not isinstance(value, bool):  # True is an int too
        # Past s64 it is out of range all the same: the component says so.
        return wit.Number(max(-(2**63), min(value, 2**63 - 1)))
    return wit.Unsupported(type(value).__name__)


def marker_arguments(arguments: dict[str, object], positional: int) -> list[wit.MarkerArgument]:
    """A marker's arguments as the component checks them (positional ones
    have no name, so it can say they are not accepted)."""
    unnamed = [wit.MarkerArgument("", wit.Unsupported("positional")) for _ in range(positional)]
    return unnamed + [wit.MarkerArgument(k, marker_value(v)) for k, v in arguments.items()]
