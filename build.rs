//! Picks the default kernel set: the `wide` kernels where the target has a SIMD unit that
//! `wide` uses (x86 SSE2 and up, AArch64/ARM NEON, wasm simd128), the scalar kernels
//! elsewhere. On Cortex-M and RISC-V `wide` falls back to plain arrays, which only adds
//! overhead over the scalar loops.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(simd_by_default)");
    println!("cargo::rustc-check-cfg=cfg(simd_dispatch)");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    // The `simd` feature forces the `wide` set (to measure it where it is not the default).
    let forced = std::env::var_os("CARGO_FEATURE_SIMD").is_some();
    if forced || has("sse2") || has("neon") || has("simd128") {
        println!("cargo::rustc-cfg=simd_by_default");
    }
    // Run-time dispatch to the AVX2 + FMA kernels (`kernels::avx2`): x86_64 with `std` (for
    // the CPU detection), the SIMD set active, and the build not already compiled for AVX2
    // and FMA (then `wide` itself uses them, or AVX-512).
    let feature = |f: &str| std::env::var_os(format!("CARGO_FEATURE_{f}")).is_some();
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64");
    if x86_64 && feature("STD") && !feature("SCALAR") && !(has("avx2") && has("fma")) {
        println!("cargo::rustc-cfg=simd_dispatch");
    }
}
