"""Fills in `expect` for vectors that have none, from the component as it is now.

It never changes a vector that has an expectation: read what it wrote against
PagerDuty's API before committing it (README.md here).
Run: .venv/bin/python tests/vectors/record.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from conformance import answer, load, vector_paths, with_placeholders


def main() -> int:
    for path in vector_paths():
        vector = load(path)
        if "expect" in vector:
            continue
        vector["expect"] = with_placeholders(vector, answer(vector))
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"recorded {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
