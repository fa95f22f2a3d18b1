//! Links the `resbak` program as a position-dependent executable on Linux.
//!
//! A position-independent one (the default) has its 1.4 MB of constant tables with pointers
//! (`.data.rel.ro`) rewritten at every start, and reads 1.3 MB of relocations to do so: 2.6 MiB
//! of the 16 MiB a command may keep resident, before it reads a byte. Linked at a fixed address,
//! those pages stay on disk until used. The program's code is then mapped at the same address
//! on every run (as Go programs are by default); libraries, heap and stacks are still placed at
//! random. `RESBAK_PIE=1` at build time keeps the default. The library, the tests and the
//! Python module are built as usual.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RESBAK_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let pie = std::env::var("RESBAK_PIE").is_ok_and(|v| v == "1");
    if linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
