"""Build hook: compile the Rust guest to a component and put it in the package.

From a clone, the component is always built from the Cargo workspace beside
`host-py`. An sdist carries that workspace's sources under `rust/` and the
prebuilt `pagerduty.wasm`: building from it uses the prebuilt component, or
rebuilds it from `rust/` when `PYTEST_PAGERDUTY_REBUILD=1` (for packagers).
A Cargo workspace that is not this project's (an sdist unpacked inside
another Rust project) is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

GUEST_PACKAGE = "pagerduty-guest"
TARGET = "wasm32-wasip2"
WASM_NAME = "pagerduty_guest.wasm"


def own_workspace(directory: Path) -> bool:
    """Whether `directory` is this project's Cargo workspace."""
    guest = directory / "guest" / "Cargo.toml"
    try:
        return (directory / "Cargo.toml").is_file() and (
            f'name = "{GUEST_PACKAGE}"' in guest.read_text(encoding="utf-8")
        )
    except OSError:
        return False


class ComponentBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        destination = root / "src" / "pytest_pagerduty" / "pagerduty.wasm"
        clone, sdist = root.parent, root / "rust"
        if own_workspace(clone):
            destination.write_bytes(without_names(_build_component(clone).read_bytes()))
        elif own_workspace(sdist) and (
            os.environ.get("PYTEST_PAGERDUTY_REBUILD") == "1" or not destination.is_file()
        ):
            destination.write_bytes(without_names(_build_component(sdist).read_bytes()))
        elif not destination.is_file():
            raise RuntimeError(
                "no Cargo workspace of this project and no prebuilt pagerduty.wasm: "
                "build from a clone of the repository or from its sdist"
            )
        # The wheel holds Python and WebAssembly only: one wheel for every platform.
        build_data["pure_python"] = True
        build_data["tag"] = "py3-none-any"


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def without_names(component: bytes) -> bytes:
    """The component without its top-level `component-name` custom section:
    names for debuggers (11 KB) that nothing reads at run time, and that
    the linker has no switch to leave out. Top-level sections are simply
    concatenated after the 8-byte header, so dropping one changes nothing
    else."""
    out = bytearray(component[:8])
    at = 8
    while at < len(component):
        start = at
        size, body = _leb128(component, at + 1)
        at = body + size
        if component[start] == 0:  # a custom section: its name comes first
            length, name = _leb128(component, body)
            if component[name : name + length] == b"component-name":
                continue
        out += component[start:at]
    return bytes(out)


def _build_component(workspace: Path) -> Path:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError("cargo is needed to build the component; install Rust with rustup")
    subprocess.run(
        [cargo, "build", "--release", "--locked", "--target", TARGET, "-p", GUEST_PACKAGE],
        cwd=workspace,
        check=True,
    )
    metadata = subprocess.run(
        [cargo, "metadata", "--format-version", "1", "--no-deps"],
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
    )
    target_dir = Path(json.loads(metadata.stdout)["target_directory"])
    return target_dir / TARGET / "release" / WASM_NAME


class RepositoryFilesHook(MetadataHookInterface):  # type: ignore[misc]
    """The README (the long description) and the LICENSE are the
    repository's: from a clone they are copied beside pyproject.toml (not
    committed there) before the metadata reads them; an sdist has them."""

    def update(self, metadata: dict[str, Any]) -> None:
        root = Path(self.root)
        if own_workspace(root.parent):
            for name in ("README.md", "LICENSE"):
                shutil.copyfile(root.parent / name, root / name)
        text = (root / "README.md").read_text(encoding="utf-8")
        metadata["readme"] = {"content-type": "text/markdown", "text": text}
