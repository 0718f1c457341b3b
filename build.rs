//! Build script: only an opt-in link flag for now.
//!
//! `BERTH_NO_PIE=1 cargo build --release` links the `berth` binary as a position-dependent
//! executable (`-no-pie`). Every `berth shim` (one per container) then shares its relocated
//! read-only data with the others instead of holding private copies; the cost is that the
//! main binary's own code and data are no longer randomised (ASLR still applies to the
//! stack, heap, mmap areas and shared libraries). BENCHMARKS.md has the measured difference.
fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_NO_PIE");
    if std::env::var("BERTH_NO_PIE").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
