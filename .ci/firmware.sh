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

# On-device adaptation (examples/adapt-m4f, Cortex-M4F): three boots of the same firmware
# with a store file between them, as a power cycle. Boot 1 finds no store and adapts from
# the factory weights; boot 2 must load what boot 1 saved and start from boot 1's accuracy;
# then a byte of the store is flipped and boot 3 must reject it and start from the factory's.
cd ../adapt-m4f
step "adapt-m4f: format and build"
cargo fmt -- --check
cargo build --release
arm-none-eabi-size target/thumbv7em-none-eabihf/release/microtrain-adapt-firmware
boot() {
    local log=target/boot$1.log status=0
    timeout 300 cargo run --release >"$log" 2>&1 || status=$?
    cat "$log"
    if [ "$status" -ne 0 ]; then
        echo "FAIL adapt boot $1: exit status $status"
        failed=1
    fi
    result=$(grep -E '^RESULT ' "$log" | tail -n 1 || true)
    before=$(sed -nE 's/.* before=([0-9]+)\/.*/\1/p' <<<"$result")
    after=$(sed -nE 's/.* after=([0-9]+)\/.*/\1/p' <<<"$result")
    store=$(sed -nE 's/.* store=([a-z]+) .*/\1/p' <<<"$result")
}
rm -f adapt.store
step "adapt-m4f: boot 1 (no store)"
boot 1
factory_before=$before first_after=$after
if [[ $result != "RESULT PASS "* || $store != none || -z $after || $after -le $before ]]; then
    echo "FAIL adapt boot 1: expected a PASS from the factory weights that improves the accuracy"
    failed=1
fi
step "adapt-m4f: boot 2 (resume from the store)"
boot 2
if [[ $result != "RESULT PASS "* || $store != loaded || $before != "$first_after" ]]; then
    echo "FAIL adapt boot 2: expected to load the store and start at boot 1's accuracy ($first_after)"
    failed=1
fi
step "adapt-m4f: boot 3 (store corrupted between the boots)"
# Flip the lowest bit of byte 100 (inside the head's weights).
perl -e 'open(my $f, "+<:raw", "adapt.store") or die "adapt.store: $!"; seek($f, 100, 0);
    read($f, my $b, 1) == 1 or die "adapt.store is short"; seek($f, 100, 0);
    print $f chr(ord($b) ^ 1); close($f) or die'
boot 3
if [[ $result != "RESULT PASS "* || $store != rejected || $before != "$factory_before" ]]; then
    echo "FAIL adapt boot 3: expected to reject the corrupted store and fall back to the factory weights"
    failed=1
fi
[ "$failed" -eq 0 ] && echo "ok adapt-m4f: three boots"
exit "$failed"
