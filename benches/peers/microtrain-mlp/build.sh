#!/bin/bash
# Builds this timing program against a microtrain checkout, without writing into this folder or the checkout.
# Usage: build.sh CHECKOUT [default|native]   -> prints the binary's path on its last line.
# The crate is copied to $SCRATCH/microtrain-mlp-build with `path` pointing at CHECKOUT and the checkout's
# Cargo.lock (microtrain's own pinned dependency versions); targets: $SCRATCH/microtrain-mlp-target{,-native}.
set -eu
SCRATCH="${SCRATCH:-$HOME/.cache/microtrain-bench}"
here=$(cd "$(dirname "$0")" && pwd)
co=$(cd "${1:?usage: build.sh CHECKOUT [default|native]}" && pwd)
flags=${2:-native}
[ -f "$co/Cargo.toml" ] && grep -q '^name *= *"microtrain"' "$co/Cargo.toml" || { echo "build.sh: $co is no microtrain checkout" >&2; exit 1; }
b=$SCRATCH/microtrain-mlp-build; mkdir -p "$b/src"
cp "$here/src/main.rs" "$b/src/main.rs"
sed "s|^microtrain = .*|microtrain = { path = \"$co\", features = [\"std\"] }|" "$here/Cargo.toml" > "$b/Cargo.toml.new"
cmp -s "$b/Cargo.toml.new" "$b/Cargo.toml" 2>/dev/null && rm "$b/Cargo.toml.new" || mv "$b/Cargo.toml.new" "$b/Cargo.toml"
[ -f "$co/Cargo.lock" ] && ! cmp -s "$co/Cargo.lock" "$b/Cargo.lock.from" 2>/dev/null && { cp "$co/Cargo.lock" "$b/Cargo.lock"; cp "$co/Cargo.lock" "$b/Cargo.lock.from"; }
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
if [ "$flags" = native ]; then
  t=$SCRATCH/microtrain-mlp-target-native
  (cd "$b" && CARGO_TARGET_DIR=$t RUSTFLAGS="-C target-cpu=native" cargo build -q --release) >&2
else
  t=$SCRATCH/microtrain-mlp-target
  (cd "$b" && env -u RUSTFLAGS CARGO_TARGET_DIR=$t cargo build -q --release) >&2
fi
echo "$t/release/microtrain-mlp"
