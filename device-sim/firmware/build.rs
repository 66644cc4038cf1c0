//! Puts the board's memory map where cortex-m-rt's link.x looks for `memory.x`:
//! thumbv7em-none-eabihf runs on QEMU's mps2-an386 (Cortex-M4F), thumbv7m-none-eabi on
//! its lm3s6965evb (Cortex-M3, 256 KiB flash, 64 KiB RAM), thumbv6m-none-eabi on its
//! microbit (Cortex-M0, 256 KiB flash, 16 KiB RAM).
use std::path::PathBuf;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let memory: &[u8] = match target.as_str() {
        "thumbv7em-none-eabihf" => include_bytes!("memory/mps2-an386.x"),
        "thumbv7m-none-eabi" => include_bytes!("memory/lm3s6965evb.x"),
        "thumbv6m-none-eabi" => include_bytes!("memory/microbit.x"),
        other => panic!(
            "no board for target {other:?}: build for thumbv7em-none-eabihf, \
             thumbv7m-none-eabi or thumbv6m-none-eabi"
        ),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=build.rs");
}
