#!/usr/bin/env python3
"""Writes launcher/tests/data/python_float_repr.txt: f64 bit patterns and Python's repr of
each, the test vector for `float_text::python_repr` (the tests read the file; they do not
need Python). Run once from the repository root: python3 scripts/gen-python-repr-vectors.py
"""
import math
import random
import struct
import sys


def bits(x):
    return struct.unpack(">Q", struct.pack(">d", x))[0]


def from_bits(b):
    return struct.unpack(">d", struct.pack(">Q", b))[0]


def neighbours(x):
    """x and the doubles just below and above it."""
    b = bits(x)
    return [from_bits(b - 1), x, from_bits(b + 1)] if x > 0 else [x]


values = [0.0, -0.0, math.nan, math.inf, -math.inf, 1.0, -1.0, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 / 3,
          0.5, 0.25, 100.0, 1234.5, -40.0, 1e6, 123456789.0, 2.0**53, 2.0**53 + 2, 2.0**63, 2.0**64,
          5e-324, 1e-323, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
          9007199254740993.0, 1e22, 1e23, 3e-05, 1.2345e-05, 0.00012345, 9.999999999999999e15,
          99999999999999.99, 0.30000000000000004, 1e-7, 4.35, 1.005, 2.675, 0.001, 1e15, 1e16, 1.5e16]
# Powers of ten and their neighbours across the whole range, and the notation boundaries.
for e in range(-325, 309, 7):
    values += neighbours(float(f"1e{e}"))
for e in range(-8, 20):
    values += neighbours(float(f"1e{e}"))
    values += [float(f"{d}e{e}") for d in (2, 5, 9.5, 1.25)]
# Integers near the 2**53 limit of exact integers, and small integral values.
values += [float(n) for n in (7, 42, 1000, 65536, 10**15 - 1, 10**15 + 1, 10**16 - 2, 10**17)]
# Random bit patterns (finite ones), subnormals, and numbers of metric-like size.
rng = random.Random(20261125)
while len(values) < 420:
    x = from_bits(rng.getrandbits(64))
    if math.isfinite(x):
        values.append(x)
for _ in range(40):
    values.append(from_bits(rng.getrandbits(52)) * rng.choice((1, -1)))  # subnormal
for _ in range(60):
    values.append(rng.uniform(-3, 3) * 10.0 ** rng.randint(-7, 18))

seen = set()
out = sys.stdout if len(sys.argv) > 1 and sys.argv[1] == "-" else open(
    "launcher/tests/data/python_float_repr.txt", "w")
out.write(f"# f64 bits (hex) and Python {sys.version.split()[0]}'s repr; made by "
          "scripts/gen-python-repr-vectors.py\n")
for x in values:
    b = bits(x)
    if b in seen:
        continue
    seen.add(b)
    out.write(f"{b:016x} {x!r}\n")
