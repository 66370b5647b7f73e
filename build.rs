//! Picks the default kernel set: the `wide` kernels where the target has a SIMD unit that
//! `wide` uses (x86 SSE2 and up, AArch64/ARM NEON, wasm simd128), the scalar kernels
//! elsewhere. On Cortex-M and RISC-V `wide` falls back to plain arrays, which only adds
//! overhead over the scalar loops.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(simd_by_default)");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    // The `simd` feature forces the `wide` set (to measure it where it is not the default).
    let forced = std::env::var_os("CARGO_FEATURE_SIMD").is_some();
    if forced || has("sse2") || has("neon") || has("simd128") {
        println!("cargo::rustc-cfg=simd_by_default");
    }
}
