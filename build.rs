//! Links the release `berthd` as a position-dependent executable (`-no-pie`).
//!
//! Every container has a monitor, which is berthd re-executed. A PIE binary is relocated
//! at load time, and the pages holding its relocated pointers (vtables, string tables)
//! become private to each process: about 350 KiB per monitor. A fixed-address binary has
//! those resolved at link time, so the pages stay shared, and a monitor's private memory
//! drops to about 170 KiB. (Go's dockerd is not PIE either.) Debug builds keep PIE.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|o| o == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bin=berthd=-no-pie");
    }
}
