"""Writes the part of PagerDuty's published REST contract that the tests
check requests against: `POST /incidents`, `GET /incidents`,
`PUT /incidents/{id}` and `POST /incidents/{id}/notes`, with every schema and
parameter they reference. Run from the repository root when the contract
changes:

    python tests/contract/extract.py ../shared/pagerduty-api/rest-openapiv3.json

The source is PagerDuty/api-schema `reference/REST/openapiv3.json` (see
shared/pagerduty-api/README.md); the extract keeps its text unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
EXTRACT = HERE / "rest-incidents.json"
OPERATIONS = (
    "#/paths/~1incidents/post",
    "#/paths/~1incidents/get",
    "#/paths/~1incidents~1{id}/put",
    "#/paths/~1incidents~1{id}~1notes/post",
)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _get(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _put(out: dict[str, Any], ref: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref.removeprefix("#/").split("/")]
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"openapi": spec["openapi"], "info": spec["info"]}
    seen: set[str] = set()
    todo = list(OPERATIONS)
    while todo:
        ref = todo.pop()
        # A ref into part of a schema (".../allOf/0") needs the whole schema.
        root = "/".join(ref.split("/")[:4]) if ref.startswith("#/components/") else ref
        if root in seen:
            continue
        seen.add(root)
        value = _get(spec, root)
        _put(out, root, value)
        todo.extend(_refs(value))
    return out


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    EXTRACT.write_text(json.dumps(extract(source), indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXTRACT}")
