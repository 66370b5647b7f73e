//! Picks the memory layout and the instruction counter of the target being built.
//!
//! There is deliberately no `memory.x` at the crate root: the linker would silently prefer it
//! over the one written to OUT_DIR here.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(counter_systick, counter_minstret)");
    println!("cargo::rerun-if-changed=memory");
    let target = env::var("TARGET").unwrap_or_default();
    let (memory, counter) = if target.starts_with("thumbv7em") {
        ("mps2-an386.x", Some("counter_systick"))
    } else if target.starts_with("thumbv6m") {
        // QEMU's micro:bit model gives SysTick no clock: that build counts nothing.
        ("microbit.x", None)
    } else if target.starts_with("riscv32") {
        ("riscv-virt.x", Some("counter_minstret"))
    } else {
        println!(
            "cargo::error=build with --target thumbv7em-none-eabihf, thumbv6m-none-eabi or riscv32imac-unknown-none-elf"
        );
        return;
    };
    if let Some(counter) = counter {
        println!("cargo::rustc-cfg={counter}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    let layout = fs::read(PathBuf::from("memory").join(memory)).unwrap_or_default();
    if layout.is_empty() || fs::write(out.join("memory.x"), layout).is_err() {
        println!("cargo::error=cannot copy memory/{memory} to OUT_DIR");
        return;
    }
    println!("cargo::rustc-link-search={}", out.display());
    // cortex-m-rt's link.x includes memory.x itself; riscv-rt's only with its `memory`
    // feature, so it is named on the command line there.
    if target.starts_with("riscv") {
        println!("cargo::rustc-link-arg=-Tmemory.x");
    }
    println!("cargo::rustc-link-arg=-Tlink.x");
}
