#!/usr/bin/env bash
# Measures the Cortex-M4F firmware: flash, RAM (static + painted stack peak), instructions per
# epoch and per training sample, where they go, and the kernel variants. Prints a report.
#
#   bash examples/cortex-m4f/measure.sh          # ~5 minutes on 2 cores (six LTO builds)
#
# Needs what .ci/firmware.sh installs, plus gcc (for the QEMU plugin) and python3.
# All counts are QEMU guest instructions under -icount shift=0, a proxy for cost, not cycles.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never
target=thumbv7em-none-eabihf
out=target/measure
mkdir -p "$out"
gcc -O2 -shared -fPIC -o "$out/libinsnprofile.so" qemu-plugin/insnprofile.c
qemu=(qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none
      -semihosting-config enable=on,target=native -icount shift=0)

# build NAME [cargo args...]: builds and keeps the ELF as $out/NAME.elf
build() {
    local name=$1
    shift
    cargo build --release --target "$target" --target-dir "$out/cargo" "$@" 2>"$out/$name.build.log" \
        || { cat "$out/$name.build.log"; exit 1; }
    cp "$out/cargo/$target/release/microtrain-firmware" "$out/$name.elf"
}
# run NAME [plugin args]: runs $out/NAME.elf under the counting plugin; output in $out/NAME.log
run() {
    local name=$1 plugin=$out/libinsnprofile.so${2:+,$2}
    timeout 300 "${qemu[@]}" -d plugin -plugin "$plugin" -kernel "$out/$name.elf" \
        >"$out/$name.log" 2>&1 || true
}
field() { sed -nE "$2" "$out/$1.log" | tail -n 1; }
insns() { field "$1" 's/^insns: ([0-9]+)$/\1/p'; }
fit_insns() { field "$1" 's/^instructions in fit: ([0-9]+) total.*/\1/p'; }

echo "building (6 release builds with LTO)..."
build default
FIRMWARE_EPOCHS=0 build zero
build unchecked --features unchecked-updates
build simd --features simd
build simd-unchecked --features simd,unchecked-updates
CARGO_PROFILE_RELEASE_OPT_LEVEL=s build size-s

for name in default zero unchecked simd simd-unchecked size-s; do run "$name"; done
run default "profile=$out/profile.txt"

epochs=$(field default 's/^RESULT .* epochs=([0-9]+).*/\1/p')

rows=120 # ROWS - TEST_ROWS in src/training.rs
samples=$((epochs * rows))

echo
echo "== firmware (Cortex-M4F, opt-level 3, LTO) =="
grep -E '^(held-out|weights|ram:|RESULT)' "$out/default.log"
arm-none-eabi-size -A "$out/default.elf" | grep -E '^\.(vector_table|text|rodata|data|bss|uninit) '
read -r vt text rodata data bss <<<"$(arm-none-eabi-size -A "$out/default.elf" | awk '
    $1==".vector_table"{v=$2} $1==".text"{t=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2}
    END{print v+0, t+0, r+0, d+0, b+0}')"
stack=$(field default 's/.*stack peak ([0-9]+) of.*/\1/p')
echo "flash = vector table + text + rodata + data = $((vt + text + rodata + data)) B"
echo "RAM   = data $data + bss $bss + stack peak $stack = $((data + bss + stack)) B"
echo "(bss holds the App singleton: Split + Model + Trainer, see 'ram:' above)"

echo
echo "== instructions (plugin: exact totals) =="
total=$(insns default) zero=$(insns zero)
echo "whole run, $epochs epochs: $total; same binary built with 0 epochs: $zero"
echo "difference / $epochs epochs = $(((total - zero) / epochs)) per epoch," \
     "$(((total - zero) / samples)) per sample (includes the per-epoch print)"
echo
echo "== instructions in fit only (SysTick x 40, per-epoch print excluded) =="
printf '%-40s %12s %10s %10s\n' variant per-epoch per-sample 'flash B'
for name in default unchecked simd simd-unchecked size-s; do
    t=$(fit_insns "$name")
    f=$(arm-none-eabi-size -A "$out/$name.elf" | awk '
        $1==".vector_table"||$1==".text"||$1==".rodata"||$1==".data"{s+=$2} END{print s}')
    case $name in
        default) label="scalar (default), checked updates";;
        unchecked) label="scalar, unchecked updates";;
        simd) label="wide (simd feature), checked updates";;
        simd-unchecked) label="wide, unchecked updates";;
        size-s) label="scalar, opt-level s";;
    esac
    chk=$(field "$name" 's/^RESULT .*checksum=(0x[0-9a-f]+).*/\1/p')
    printf '%-40s %12s %10s %10s  %s\n' "$label" "$((t / epochs))" "$((t / samples))" "$f" "$chk"
done

echo
echo "== where the instructions go (default build, whole run, per training sample) =="
python3 profile.py "$out/default.elf" "$out/profile.txt" "$samples"
