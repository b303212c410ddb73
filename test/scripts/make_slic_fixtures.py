#!/usr/bin/python3
"""Reference SLIC label maps from scikit-image itself, for test/slic.test.ts.

Run with Debian's Python and scikit-image (apt-get install python3-skimage):
    /usr/bin/python3 test/scripts/make_slic_fixtures.py
Writes test/fixtures/slic/<image>.png (the exact input), <image>__n<N>_c<C>.labels.gz
(uint16 little-endian, row-major, gzip) and manifest.json.
"""
import gzip
import json
import os

import numpy as np
import skimage
from PIL import Image
from skimage import data
from skimage.segmentation import slic
from skimage.transform import resize

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "slic")
PARAMS = [(20, 5.0), (50, 10.0), (8, 1.0), (100, 20.0)]


def shrink(img, width):
    h, w = img.shape[:2]
    height = round(h * width / w)
    return (resize(img, (height, width), anti_aliasing=True) * 255).round().astype(np.uint8)


def synthetic():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:128]
    shapes = np.zeros((96, 128, 3), np.uint8)
    shapes[..., 0] = (xx * 2).clip(0, 255)
    shapes[..., 1] = (yy * 2).clip(0, 255)
    shapes[20:60, 30:70] = (250, 20, 20)
    shapes[((yy - 60) ** 2 + (xx - 95) ** 2) < 400] = (20, 20, 240)
    noise = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    flat = np.full((40, 50, 3), 128, np.uint8)
    # Constant rows on a symmetric grid: many exact distance ties, decided by last-ulp libm
    # differences (V8 vs glibc pow/cbrt). Tested separately, see test/slic.test.ts.
    tall = np.zeros((200, 24, 3), np.uint8)
    tall[:, :, 1] = (np.arange(200) % 256)[:, None]
    tall[50:120, 5:20] = (200, 200, 0)
    tiny = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    return {"shapes": shapes, "noise": noise, "flat": flat, "tall": tall, "tiny": tiny}


def main():
    os.makedirs(OUT, exist_ok=True)
    images = {
        "astronaut": shrink(data.astronaut(), 128),
        "chelsea": shrink(data.chelsea(), 150),
        "coffee": shrink(data.coffee(), 120),
        "rocket": shrink(data.rocket(), 140),
        "tall_natural": shrink(data.astronaut()[:, 180:300], 30),
        **synthetic(),
    }
    manifest = {"skimage": skimage.__version__, "numpy": np.__version__, "cases": []}
    for name, img in images.items():
        Image.fromarray(img, "RGB").save(os.path.join(OUT, f"{name}.png"))
        for n, c in PARAMS:
            labels = slic(img, n_segments=n, compactness=c, start_label=0)
            file = f"{name}__n{n}_c{c:g}.labels.gz"
            with open(os.path.join(OUT, file), "wb") as f:
                f.write(gzip.compress(labels.astype("<u2").tobytes(), mtime=0))
            manifest["cases"].append({
                "image": f"{name}.png", "labels": file, "num_segments": n, "compactness": c,
                "width": int(img.shape[1]), "height": int(img.shape[0]),
                "segments": int(labels.max()) + 1,
            })
            print(name, n, c, img.shape, labels.max() + 1)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


main()
