//! Compiles the guest to a component for `include_bytes!`, so the host's
//! binaries carry the component they were tested with.
//!
//! `PAGERDUTY_COMPONENT_WASM` names an already built `.wasm` instead (CI builds
//! the guest once for every host). Otherwise the guest is built by a nested
//! cargo in its own target folder: the outer build holds this one's lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PAGERDUTY_COMPONENT_WASM");
    if let Some(wasm) = env::var_os("PAGERDUTY_COMPONENT_WASM") {
        let wasm = PathBuf::from(wasm);
        assert!(
            wasm.is_file(),
            "PAGERDUTY_COMPONENT_WASM={} is not a file",
            wasm.display()
        );
        println!("cargo:rerun-if-changed={}", wasm.display());
        println!(
            "cargo:rustc-env=PAGERDUTY_COMPONENT_WASM={}",
            wasm.display()
        );
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("embedded-guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["-p", "pagerduty-guest", "--target-dir"])
        .arg(&target)
        // The outer build's flags are for the host, not for wasm32.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` this names clippy-driver: lint the host, not the guest build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("running cargo to build the guest");
    assert!(
        status.success(),
        "building the guest failed; is the target installed? rustup target add wasm32-wasip2"
    );
    let wasm = target.join("wasm32-wasip2/release/pagerduty_guest.wasm");
    println!(
        "cargo:rustc-env=PAGERDUTY_COMPONENT_WASM={}",
        wasm.display()
    );
}
