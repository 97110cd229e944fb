"""The decode pool and the ordered read-ahead (cxr_engine.reading.decode_pool), and cxr-classify through them."""
from __future__ import annotations

import csv
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cxr_engine.reading.decode_pool import DecodePool, decode_in_order
from cxr_engine.errors import ImageReadError
from cxr_engine.reading.reduced_decode import DecodeRequest


class TestDecodeInOrder:
    def test_results_come_back_in_input_order_whatever_finishes_first(self):
        def read(path):
            time.sleep(0.02 * (5 - int(path.name)))  # later files finish first
            return path.name

        paths = [Path(str(i)) for i in range(6)]
        assert [value for _, value in decode_in_order(paths, read, threads=3)] == [p.name for p in paths]

    def test_an_exception_is_handed_back_in_its_place(self):
        def read(path):
            if path.name == "bad":
                raise ImageReadError(path, "broken")
            return path.name

        out = list(decode_in_order([Path("a"), Path("bad"), Path("c")], read, threads=2))
        assert out[0][1] == "a" and isinstance(out[1][1], ImageReadError) and out[2][1] == "c"

    def test_at_most_max_pending_files_are_read_ahead(self):
        started, lock = [], threading.Lock()

        def read(path):
            with lock:
                started.append(path)
            return path

        results = decode_in_order([Path(str(i)) for i in range(50)], read, threads=2, max_pending=4)
        next(results)
        time.sleep(0.2)
        assert len(started) <= 5  # the four queued before the first was handed out, and one more
        results.close()


def test_pool_decodes_in_parallel_workers_and_reports_bad_files(dicom_dir, tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 10)
    paths = [dicom_dir / "966_fixed.dcm", junk, dicom_dir / "RG1_J2KI.dcm", dicom_dir / "CR-MONO1-10-chest.dcm"]
    with DecodePool(workers=2, request=DecodeRequest.for_model(224)) as pool:
        out = list(decode_in_order(paths, pool, threads=2))
        assert pool.workers_started == 2
        full = pool.read(paths[0], DecodeRequest())
    assert [path for path, _ in out] == paths
    assert isinstance(out[1][1], ImageReadError) and "junk.dcm" in str(out[1][1])
    assert out[0][1].reduction == 4 and out[2][1].reduction == 2 and out[3][1].reduction == 1
    assert full.reduction == 1


def test_cli_rows_in_input_order_and_the_same_calls_as_full_decoding(dicom_dir, tmp_path):
    from cxr_engine import find_images
    from cxr_engine.cli import main

    folder = tmp_path / "films"
    folder.mkdir()
    names = []
    for i, name in enumerate(["966_fixed.dcm", "RG1_J2KI.dcm", "Fake_MONOHR1.dcm", "RG1_JLSN.dcm"] * 2):
        names.append(f"{i:02d}_{name}")
        shutil.copy(dicom_dir / name, folder / names[-1])
        if i >= 4:  # a second instance of the film, not a copy of the first (copies are classified once)
            ds = pydicom.dcmread(folder / names[-1])
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[names[-1]])
            ds.save_as(folder / names[-1])
    (folder / "03b_junk.dcm").write_bytes(b"\0" * 300)
    names.insert(4, "03b_junk.dcm")
    reduced, full = tmp_path / "reduced.csv", tmp_path / "full.csv"
    assert main([str(folder), "--csv", str(reduced), "--backend", "onnx", "--decode-workers", "2", "-q"]) == 1
    assert main([str(folder), "--csv", str(full), "--backend", "onnx", "--full-decode", "-q"]) == 1
    rows = {which: list(csv.DictReader(path.open())) for which, path in (("reduced", reduced), ("full", full))}
    assert sorted(Path(row["path"]).name for row in rows["reduced"]) == sorted(names)
    assert [Path(row["path"]) for row in rows["reduced"]] == find_images([folder]).files  # the app's order
    for a, b in zip(rows["reduced"], rows["full"]):
        assert (a["path"], a["status"], a["prediction"]) == (b["path"], b["status"], b["prediction"])
        if a["status"] == "ok":
            for column in ("p_normal", "p_pneumonia", "p_covid"):
                assert float(a[column]) == pytest.approx(float(b[column]), abs=0.05)


class _CountingPool:
    """Stands in for a DecodePool: counts reads, fails for 'bad', sleeps so that reads overlap."""

    def __init__(self):
        self.reads = []
        self.lock = threading.Lock()

    def read(self, path, request):
        with self.lock:
            self.reads.append((path, request.min_side))
        time.sleep(0.05)
        if path.name == "bad":
            raise ImageReadError(path, "broken")
        import numpy as np

        from cxr_engine.pixels.image import CxrImage

        values = np.zeros((100, 100), np.uint16)
        return CxrImage(path=path, stored=values, modality=values.astype(np.int32),
                        reduction=1 if request.full else 2)  # as a film with resolution levels

    def close(self):
        pass


class TestCachedDecoder:
    def test_one_decode_per_file_and_size_even_when_asked_at_once(self):
        from cxr_engine.reading.decode_cache import CachedDecoder

        pool = _CountingPool()
        decoder = CachedDecoder(pool)
        small, large = DecodeRequest(96), DecodeRequest(448)
        threads = [threading.Thread(target=decoder.read, args=(Path("a"), small)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        decoder.read(Path("a"), large)
        decoder.read(Path("a"), small)
        assert sorted(pool.reads) == [(Path("a"), 96), (Path("a"), 448)] and decoder.decodes == 2

    def test_errors_are_not_cached_and_the_budget_evicts_the_oldest(self):
        from cxr_engine.reading.decode_cache import CachedDecoder, image_bytes

        pool = _CountingPool()
        decoder = CachedDecoder(pool, max_bytes=2 * 60_000)  # room for two 100×100 images (uint16 + int32)
        for _ in range(2):
            with pytest.raises(ImageReadError, match="broken"):
                decoder.read(Path("bad"), DecodeRequest(96))
        assert decoder.decodes == 2
        first = decoder.read(Path("1"), DecodeRequest(96))
        assert image_bytes(first) == 60_000
        decoder.read(Path("2"), DecodeRequest(96))
        decoder.read(Path("3"), DecodeRequest(96))
        assert decoder.cached_bytes == 120_000
        decoder.read(Path("1"), DecodeRequest(96))  # evicted: decoded again
        assert [p.name for p, _ in pool.reads].count("1") == 2

    def test_a_file_without_reduced_decodes_is_decoded_once_for_every_size(self, dicom_dir):
        from cxr_engine.reading.decode_cache import CachedDecoder

        cxr3_jpeg = next((dicom_dir.parent / "cxr3" / "images").rglob("*.jpg"), None)
        if cxr3_jpeg is None:
            pytest.skip("no cxr3 JPEG image in ../shared/data")
        pool = _CountingPool()
        decoder = CachedDecoder(pool)
        jpeg_ls, j2k = dicom_dir / "RG1_JLSN.dcm", dicom_dir / "966_fixed.dcm"
        for path in (jpeg_ls, cxr3_jpeg, j2k):
            for request in (DecodeRequest(96), DecodeRequest(448), DecodeRequest()):
                decoder.read(path, request)
        # JPEG-LS has no resolution levels and a PNG/JPEG file is read in full: one full decode each;
        # the JPEG 2000 film is decoded at each size asked
        assert sorted(pool.reads, key=str) == sorted([(jpeg_ls, None), (cxr3_jpeg, None), (j2k, 96), (j2k, 448),
                                                      (j2k, None)], key=str)
        assert decoder.decodes == 5

    def test_a_reduced_decode_that_fell_back_serves_every_later_size_and_the_viewer(self, dicom_dir):
        """This 440×440 uncompressed film (its header does not say so without the file meta) has no
        cheaper decode, so its thumbnail's decode is the full one: the model input and the viewer get that
        same decode, as ``read_image`` with the model's request (the CLI's way) would give."""
        from cxr_engine.reading.decode_cache import CachedDecoder
        from cxr_engine.reading.decode_pool import DecodePool
        from cxr_engine.reading.read import read_image

        path = dicom_dir / "CR-MONO1-10-chest.dcm"
        if not path.exists():
            pytest.skip(f"{path.name} not in ../shared/data/dicom")
        with DecodePool(1) as pool:
            counting = _Counting(pool)
            decoder = CachedDecoder(counting)
            thumbnail = decoder.read(path, DecodeRequest.thumbnail(96))
            model = decoder.read(path, DecodeRequest.for_model(224))
            full = decoder.read(path, DecodeRequest())
        assert counting.reads == [(path, 96)] and decoder.decodes == 1
        assert thumbnail.reduction == 1 and model is thumbnail and full is thumbnail
        cli = read_image(path, DecodeRequest.for_model(224))
        assert cli.reduction == 1 and np.array_equal(cli.modality, model.modality)

    def test_a_request_waits_for_a_smaller_one_of_the_same_file_that_may_serve_it(self):
        from cxr_engine.reading.decode_cache import CachedDecoder

        class FallingBack(_CountingPool):
            def read(self, path, request):
                return replace(super().read(path, request), reduction=1)  # no level was usable

        pool = FallingBack()
        decoder = CachedDecoder(pool)
        small = threading.Thread(target=decoder.read, args=(Path("a"), DecodeRequest(96)))
        small.start()
        time.sleep(0.01)
        large = [decoder.read(Path("a"), DecodeRequest(448)), decoder.read(Path("a"), DecodeRequest())]
        small.join()
        assert pool.reads == [(Path("a"), 96)] and large[0] is large[1]
        decoder.read(Path("a"), DecodeRequest(48))  # fewer pixels: may reduce further, so it is decoded
        assert pool.reads == [(Path("a"), 96), (Path("a"), 48)]


    def test_a_reduced_decode_serves_larger_requests_its_short_side_still_holds(self, dicom_dir):
        """RG1_J2KI.dcm (1955×1841) has only its ×2 level usable (``_pillow_sizes_level``): its thumbnail's
        decode (978×921) is the one the model input asks for too, as ``read_image`` gives it."""
        from cxr_engine.reading.decode_cache import CachedDecoder
        from cxr_engine.reading.decode_pool import DecodePool
        from cxr_engine.reading.read import read_image

        path = dicom_dir / "RG1_J2KI.dcm"
        if not path.exists():
            pytest.skip(f"{path.name} not in ../shared/data/dicom")
        with DecodePool(1) as pool:
            counting = _Counting(pool)
            decoder = CachedDecoder(counting)
            thumbnail = decoder.read(path, DecodeRequest.thumbnail(96))
            model = decoder.read(path, DecodeRequest.for_model(224))
            assert counting.reads == [(path, 96)] and model is thumbnail and model.reduction == 2
            assert np.array_equal(read_image(path, DecodeRequest.for_model(224)).modality, model.modality)
            decoder.read(path, DecodeRequest(min(model.shape) + 1))  # more than it holds: decoded
            decoder.read(path, DecodeRequest(48))  # fewer pixels: may reduce further, so it is decoded
        assert counting.reads == [(path, 96), (path, min(model.shape) + 1), (path, 48)]


class _Counting:
    def __init__(self, pool):
        self.pool, self.reads = pool, []

    def read(self, path, request):
        self.reads.append((path, request.min_side))
        return self.pool.read(path, request)


def test_waiting_callers_get_a_worker_most_urgent_first():
    """With every worker busy, a thumbnail that asks later goes before batch work that asked earlier,
    and the film on screen before both; equal priorities keep their arrival order. (Scheduling only:
    no worker process is started.)"""
    from cxr_engine.reading.decode_pool import BATCH, THUMBNAIL, VIEW, DecodePool, decode_priority

    pool = DecodePool(workers=1)
    busy = pool._take_worker()  # the one worker, busy
    order: list[str] = []

    def wait_for_worker(name: str, level: int) -> None:
        with decode_priority(level):
            reader = pool._take_worker()
        order.append(name)
        pool._free.append(reader)  # give it back at once, as read() does
        with pool._changed:
            pool._changed.notify_all()

    callers = [("batch 1", BATCH), ("batch 2", BATCH), ("thumbnail", THUMBNAIL), ("view", VIEW)]
    threads = []
    for name, level in callers:
        thread = threading.Thread(target=wait_for_worker, args=(name, level))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while len(pool._waiting) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.01)  # this caller is queued before the next one asks
    with pool._changed:
        pool._free.append(busy)
        pool._changed.notify_all()
    for thread in threads:
        thread.join(10)
    assert order == ["view", "thumbnail", "batch 1", "batch 2"]
