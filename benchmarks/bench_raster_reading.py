"""Does PNG/JPEG reading with Pillow (``cxr_engine.reading.raster_io.read_raster``) give the stored
values OpenCV's decoder gave, and how fast is each?

Reads every ``--step``-th JPEG of ``cxr3/images``, every image of ``cxr_other/images`` and the JPEG
bug cases (real films from ``../shared``) twice: with ``read_raster`` and with the OpenCV path it replaced
(``cv2.imdecode(IMREAD_UNCHANGED)``, EXIF orientation, ``cvtColor`` to grey), and reports how many
differ in any pixel and, over the ``--timed`` largest files, the median of each file's median read time.

    python -m benchmarks.bench_raster_reading --step 20

Needs OpenCV (``opencv-python-headless``, the ``train`` extra) for the reference.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .timing import median_ms

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def opencv_read(path: Path) -> np.ndarray:
    import cv2
    from PIL import Image

    from cxr_engine.reading.raster_io import apply_exif_orientation

    data = np.fromfile(path, dtype=np.uint8)
    with Image.open(path) as probe:  # the orientation as the engine reads it (EXIF 0x0112)
        orientation = int(probe.getexif().get(0x0112, 1) or 1)
    image = np.ascontiguousarray(apply_exif_orientation(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), orientation))
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return image


def main() -> None:
    from cxr_engine.reading.raster_io import read_raster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--step", type=int, default=20, help="read every step-th cxr3 image")
    parser.add_argument("--repeats", type=int, default=5, help="timed reads of each timed file")
    parser.add_argument("--timed", type=int, default=50, help="files timed (the largest of those compared)")
    args = parser.parse_args()
    files = sorted((args.data / "cxr3" / "images").rglob("*.jpg"))[::args.step]
    files += sorted(p for p in (args.data / "cxr_other" / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files += sorted((args.data.parent / "bugcases").glob("*.jpg"))
    different = [str(f) for f in files if not np.array_equal(read_raster(f).stored, opencv_read(f))]
    timed = sorted(files, key=lambda f: f.stat().st_size, reverse=True)[:args.timed]
    pillow = [median_ms(lambda f=f: read_raster(f), args.repeats) for f in timed]
    opencv = [median_ms(lambda f=f: opencv_read(f), args.repeats) for f in timed]
    print(json.dumps({"files_compared": len(files), "files_different": len(different), "different": different[:10],
                      "files_timed": len(timed), "pillow_median_ms": round(float(np.median(pillow)), 2),
                      "opencv_median_ms": round(float(np.median(opencv)), 2)}, indent=1))


if __name__ == "__main__":
    main()
