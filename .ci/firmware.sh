#!/usr/bin/env bash
# Trains on the device, under QEMU: builds examples/cortex-m4f for a Cortex-M4F (mps2-an386),
# a Cortex-M0 (micro:bit, soft-float) and an RV32IMAC (virt, soft-float), runs each, and fails
# unless every run exits 0 (held-out accuracy >= 90 %), prints its RESULT line, and ends with
# the weight checksum committed in examples/cortex-m4f/checksum.txt, the same one the host's
# scalar build must reach (tests/firmware_parity.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n--- %s ---\n' "$*"; }

step "tools"
if ! command -v qemu-system-arm >/dev/null || ! command -v qemu-system-riscv32 >/dev/null \
    || ! command -v arm-none-eabi-size >/dev/null; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        qemu-system-arm qemu-system-misc binutils-arm-none-eabi >/dev/null
fi
qemu-system-arm --version | head -n 1
targets=(thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf)
rustup target add "${targets[@]}"

cd examples/cortex-m4f
expected=$(tr -d '[:space:]' < checksum.txt)
echo "committed checksum: $expected"

step "format"
cargo fmt -- --check

failed=0
for target in "${targets[@]}"; do
    step "$target: build"
    cargo build --release --target "$target"
    elf=target/$target/release/microtrain-firmware
    if [[ $target == riscv* ]]; then size "$elf"; else arm-none-eabi-size "$elf"; fi

    step "$target: train on the emulator"
    log=target/$target/run.log
    status=0
    # The runner (QEMU, see .cargo/config.toml) returns the firmware's semihosting exit code;
    # timeout catches a hang, which never exits by itself.
    timeout 300 cargo run --release --target "$target" >"$log" 2>&1 || status=$?
    cat "$log"
    result=$(grep -E '^RESULT ' "$log" | tail -n 1 || true)
    checksum=$(sed -nE 's/^RESULT .*checksum=(0x[0-9a-f]{8}).*/\1/p' <<<"$result")
    if [ "$status" -ne 0 ]; then
        echo "FAIL $target: exit status $status"
        failed=1
    elif [[ $result != "RESULT PASS "* ]]; then
        echo "FAIL $target: no passing RESULT line"
        failed=1
    elif [ "$checksum" != "$expected" ]; then
        echo "FAIL $target: checksum $checksum, committed $expected (scalar builds must agree bit for bit)"
        failed=1
    else
        echo "ok $target: $result"
    fi
done

step "thumbv7em-none-eabihf: an unwrap links no float formatting"
# `Error`'s `Debug` writes floats as bits on bare-metal targets; with the error path kept
# (the `unwrap-errors` feature), its variant names must be in flash and float formatting not.
cargo build --release --target thumbv7em-none-eabihf --features unwrap-errors
elf=target/thumbv7em-none-eabihf/release/microtrain-firmware
arm-none-eabi-size "$elf"
# `-d`: the loaded sections only (the debug information names every variant too).
if ! arm-none-eabi-strings -d "$elf" | grep -q LengthMismatch; then
    echo "FAIL: Error's Debug is not linked, so this check proves nothing"
    failed=1
elif arm-none-eabi-nm -C "$elf" | grep -E 'flt2dec|core::fmt::float'; then
    echo "FAIL: unwrapping a microtrain Result links float formatting"
    failed=1
else
    echo "ok: Error's Debug linked without float formatting"
fi
exit "$failed"
