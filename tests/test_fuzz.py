"""A few hundred fuzz cases (seeded mutations of the real files) through the isolated reader.

The full run (5,000 cases) is ``python -m benchmarks.bench_fuzz``; this keeps every stop honest.
"""
from __future__ import annotations

import random

import pytest

from benchmarks.bench_fuzz import run_fuzz
from benchmarks.fuzz_cases import load_seeds, make_case, png_absurd_size


def test_every_fuzz_case_ends_cleanly(shared_data):
    rows, summary = run_fuzz(300, seed=7, timeout_s=20.0, shared=shared_data, progress=False)
    assert summary["cases"] == 300
    assert summary["not_clean"] == 0, summary["not_clean_cases"]
    # The mutations must reach the decoders, not only the front door.
    assert summary["outcomes"]["ok"] >= 30 and summary["outcomes"]["error"] >= 100
    assert summary["slowest_case"]["seconds"] < 20.0
    assert len({row["mutation"] for row in rows}) >= 12


def test_cases_are_reproducible_one_by_one(shared_data):
    seeds = load_seeds(shared_data)
    first = [make_case(i, seeds, seed=3) for i in range(40)]
    again = [make_case(i, seeds, seed=3) for i in reversed(range(40))][::-1]
    assert [c.data for c in first] == [c.data for c in again]
    assert len({c.data for c in first}) > 30


def test_absurd_png_size_is_refused_before_decoding(shared_data, tmp_path):
    from cxr_engine.errors import UnsupportedImageError
    from cxr_engine.reading.read import read_image

    png = next(s for s in load_seeds(shared_data) if s.name.endswith("_grey8.png"))
    rng = random.Random(0)
    data = png.data
    while True:  # draw until the mutation picks the 100,000 × 100,000 header
        data = png_absurd_size(png.data, rng)
        if int.from_bytes(data[16:20], "big") == 100000:
            break
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    with pytest.raises(UnsupportedImageError, match="too large"):
        read_image(path)
