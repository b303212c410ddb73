#!/usr/bin/env python3
"""Reference .npy files written by numpy itself, for the byte-exact NPY encoder test.

Run: python3 test/scripts/make_npy_fixtures.py  (Debian: apt-get install python3-numpy)
Each array holds (index * 7) % 256 as uint8 in C order, so the test can rebuild the data.
"""
import os
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "npy")
SHAPES = [(2, 3, 3), (1, 2, 3, 3), (4, 5, 7, 3), (224, 224, 3), (7,)]

os.makedirs(OUT, exist_ok=True)
for shape in SHAPES:
    size = int(np.prod(shape))
    data = ((np.arange(size) * 7) % 256).astype(np.uint8).reshape(shape)
    name = "x".join(str(s) for s in shape) + ".npy"
    np.save(os.path.join(OUT, name), data)
    print(name, os.path.getsize(os.path.join(OUT, name)))
print("numpy", np.__version__)
