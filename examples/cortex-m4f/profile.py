#!/usr/bin/env python3
"""Attributes an instruction profile (insnprofile.c's `profile=` output) to source functions.

Usage: profile.py ELF PROFILE SAMPLES [ADDR2LINE]

Each executed address is mapped with addr2line (inlined frames included) to the innermost
frame that belongs to microtrain, libm, rand_xoshiro, compiler_builtins or the firmware
(generic core/iterator frames are skipped), and to a training phase: the first frame, from the
innermost outwards, that names one. SAMPLES divides the counts (training samples in the run).
"""
import re
import subprocess
import sys
from collections import defaultdict

elf, profile, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
addr2line = sys.argv[4] if len(sys.argv) > 4 else "arm-none-eabi-addr2line"

counts = {}
with open(profile) as f:
    for line in f:
        address, count = line.split()
        counts[int(address, 16)] = int(count)

query = "\n".join(hex(a) for a in sorted(counts)) + "\n"
out = subprocess.run([addr2line, "-e", elf, "-f", "-i", "-C", "-a"], input=query,
                     capture_output=True, text=True, check=True).stdout.splitlines()

frames = defaultdict(list)  # address -> [function, ...] innermost first
current = None
i = 0
while i < len(out):
    if out[i].startswith("0x"):
        current = int(out[i], 16)
        i += 1
        continue
    frames[current].append(re.sub(r"::h[0-9a-f]{16}$", "", out[i]))
    i += 2

OWN = ("microtrain", "libm", "rand_xoshiro", "rand_core", "compiler_builtins",
       "microtrain_firmware", "cortex_m")

# (phase, pattern on a frame's function name), tried from the innermost frame outwards.
PHASES = [
    ("update check (Trainer::with_checked_updates)", r"update_is_finite|surely_finite|exactly_finite"),
    ("finiteness of samples and gradients", r"train::all_finite|arm_fpu::sum_raw"),
    ("adam update", r"adam_update|optim::adam|Optimizer"),
    ("dropout mask draws", r"for_each_mask_block|mask_factors|Xoshiro128PlusPlus|SplitMix64"),
    ("forward: dense + relu", r"dense_forward|kernels::scalar::relu$|Relu as microtrain::activation::Activation"),
    ("forward: dropout apply", r"scale_by_mask|drop_in_place|Dropout<.*as microtrain::layers::Layer>::forward"),
    ("backward: relu derivative × mask", r"derivative_after"),
    ("forward: softmax", r"softmax"),
    ("loss value/accuracy/delta", r"microtrain::loss"),
    ("backward: weight/bias grads + L2", r"dense_weight_gradient|dense_bias_gradient|add_penalty|penalty"),
    ("backward: propagate", r"dense_input_gradient|kernels::scalar::multiply|relu_derivative|derivative_of_output|propagate"),
    ("zero gradients", r"fill_zero|memset"),
    ("shuffle (Permutation)", r"Permutation|rng::mix"),
    ("step bookkeeping (copy, checks)", r"gradients_with|step_with"),
    ("epoch loop", r"Trainer<.*>::fit"),
]

def owner(function):
    name = function.lstrip("<")
    return name.split("::")[0] in OWN

def leaf_function(chain):
    for f in chain:
        if owner(f):
            return f
    return chain[0] if chain else "?"

def phase(chain):
    leaf = leaf_function(chain)
    if leaf.startswith("libm::") and "sqrt" in leaf:
        # Called from both update passes; split them by calls: 131 per pass per sample.
        return "libm sqrtf, out of line (Adam: update and check)"
    if leaf.startswith("libm::"):
        return "libm " + re.sub(r".*::", "", leaf) + " (out of line)"
    # Its draws included (the generator's frames are otherwise the dropout masks').
    if any(re.search(r"rng::shuffle_indices|rng::exactly_below", f) for f in chain):
        return "shuffle (Fisher–Yates, draws included)"
    for f in chain:
        for name, pattern in PHASES:
            if re.search(pattern, f):
                return name
    return "other: " + leaf

by_function = defaultdict(int)
by_phase = defaultdict(int)
total = 0
for address, count in counts.items():
    chain = frames.get(address, ["?"])
    by_function[leaf_function(chain)] += count
    by_phase[phase(chain)] += count
    total += count

def table(title, rows, limit):
    print(f"\n{title}")
    print(f"{'instructions/sample':>20}  {'share':>6}  what")
    for name, count in sorted(rows.items(), key=lambda kv: -kv[1])[:limit]:
        print(f"{count / samples:>20.1f}  {100 * count / total:>5.1f}%  {name[:110]}")

print(f"profiled instructions: {total} over {samples} samples = {total / samples:.1f} per sample"
      " (includes everything the run did, not only training)")
table("by phase", by_phase, 30)
table("by innermost function", by_function, 25)
