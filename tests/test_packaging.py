"""The sdist and the wheel as a packager and a user get them: the sdist
carries the Rust and WIT sources beside the prebuilt component, builds
without Rust, and never mistakes another project's Cargo workspace for
this one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HATCHLING = Path(sys.executable).with_name("hatchling")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [str(HATCHLING), "build", "-t", "sdist", "-d", str(out)],
        cwd=ROOT / "host-py",
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pytest_pagerduty-*.tar.gz")
    return path


def test_the_sdist_carries_the_sources_the_component_and_the_real_readme(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        readme = archive.extractfile(
            next(n for n in archive.getnames() if n.endswith("/README.md"))
        )
        assert readme is not None
        text = readme.read().decode()
        pkg_info = archive.extractfile(
            next(n for n in archive.getnames() if n.endswith("/PKG-INFO"))
        )
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    for needed in (
        "LICENSE",
        "src/pytest_pagerduty/pagerduty.wasm",
        "rust/Cargo.toml",
        "rust/Cargo.lock",
        "rust/guest/Cargo.toml",
        "rust/guest/src/lib.rs",
        "rust/wit/pagerduty.wit",
    ):
        assert needed in names, needed
    assert not any("/target/" in name for name in names)
    # The long description is the project's README, not a stub.
    assert text == (ROOT / "README.md").read_text()
    assert "## Delivery: never lost, never in the way" in metadata


def test_an_sdist_unpacked_inside_another_rust_project_builds_without_rust(
    sdist: Path, tmp_path: Path
) -> None:
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["guest"]\n')
    (tmp_path / "guest").mkdir()
    (tmp_path / "guest" / "Cargo.toml").write_text('[package]\nname = "guest"\n')
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path)
    (unpacked,) = tmp_path.glob("pytest_pagerduty-*")
    # No cargo anywhere: the prebuilt component is used.
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not shutil.which("cargo", path=p)
    )
    env = {**os.environ, "PATH": path}
    env.pop("PYTEST_PAGERDUTY_REBUILD", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(unpacked),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        built = archive.read("pytest_pagerduty/pagerduty.wasm")
        assert any(n.endswith("licenses/LICENSE") for n in archive.namelist())
    assert built == (unpacked / "src" / "pytest_pagerduty" / "pagerduty.wasm").read_bytes()
    assert wheel.name.endswith("-py3-none-any.whl")
