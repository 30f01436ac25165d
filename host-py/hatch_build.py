"""Build hook: compile the Rust guest to a component and put it in the package."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

GUEST_PACKAGE = "pagerduty-guest"
TARGET = "wasm32-wasip2"
WASM_NAME = "pagerduty_guest.wasm"


class ComponentBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        destination = Path(self.root, "src", "pytest_pagerduty", "pagerduty.wasm")
        workspace = Path(self.root).parent
        if (workspace / "Cargo.toml").is_file():
            destination.write_bytes(_build_component(workspace).read_bytes())
        elif not destination.is_file():
            raise RuntimeError(
                "no Cargo workspace beside host-py and no prebuilt pagerduty.wasm: "
                "build from a clone of the repository"
            )
        # The wheel holds Python and WebAssembly only: one wheel for every platform.
        build_data["pure_python"] = True
        build_data["tag"] = "py3-none-any"


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
