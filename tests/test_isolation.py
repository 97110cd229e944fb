"""Decoding isolation: a worker process with a time and memory limit, and a pickle-free reply."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import isolation_tasks
from cxr_engine.errors import DecoderBugError, DecoderCrashError, DecodeTimeoutError, ImageReadError
from cxr_engine.reading.image_wire import decode_image, encode_image
from cxr_engine.reading.read import read_image
from cxr_engine.reading.isolation import IsolatedReader


@pytest.fixture()
def reader():
    with IsolatedReader(timeout_s=20) as isolated:
        yield isolated


def test_isolated_read_equals_in_process_read_for_every_real_dicom(dicom_dir, reader):
    files = sorted(dicom_dir.glob("*.dcm"))
    assert len(files) == 8
    for path in files:
        isolated, direct = reader.read(path), read_image(path)
        assert isolated.path == direct.path
        assert np.array_equal(isolated.stored, direct.stored) and isolated.stored.dtype == direct.stored.dtype
        assert np.array_equal(isolated.modality, direct.modality) and isolated.modality.dtype == direct.modality.dtype
        for field in ("photometric", "invert", "bits_stored", "windows", "spacing_mm", "spacing_source",
                      "metadata", "source_format", "warnings", "preferred_voi"):
            assert getattr(isolated, field) == getattr(direct, field), (path.name, field)
        assert len(isolated.voi_luts) == len(direct.voi_luts)
        assert np.array_equal(isolated.display(), direct.display())
    assert reader.workers_started == 1


def test_one_worker_serves_many_files(dicom_dir, tmp_path):
    with IsolatedReader(task=isolation_tasks.worker_pid) as reader:
        pids = set()
        for index in range(3):
            with pytest.raises(ImageReadError) as caught:
                reader.read(tmp_path / f"{index}.dcm")
            pids.add(caught.value.reason)
    assert len(pids) == 1 and pids != {str(os.getpid())}


def test_a_crashing_decoder_costs_only_its_file(dicom_dir, tmp_path):
    path = tmp_path / "crafted.dcm"
    with IsolatedReader(task=isolation_tasks.segfault) as crashing:
        with pytest.raises(DecoderCrashError) as caught:
            crashing.read(path)
    assert str(path) in str(caught.value) and "SIGSEGV" in caught.value.reason
    # A reader that lost its worker starts a new one for the next file.
    with IsolatedReader() as reader:
        reader._ensure_worker()
        reader._process.kill()
        reader._process.join()
        assert reader.read(dicom_dir / "CR-MONO1-10-chest.dcm").shape == (440, 440)
        assert reader.workers_started == 2


def test_a_hanging_decoder_is_stopped_at_the_time_limit(tmp_path):
    with IsolatedReader(timeout_s=1.0, task=isolation_tasks.hang) as reader:
        with pytest.raises(DecodeTimeoutError) as caught:
            reader.read(tmp_path / "slow.dcm")
        assert "longer than 1 s" in caught.value.reason
        assert reader._process is None  # killed, not left running


@pytest.mark.skipif(not hasattr(os, "fork"), reason="address-space limits are POSIX only")
def test_memory_is_capped_in_the_worker(tmp_path):
    with IsolatedReader(memory_limit_bytes=2 * 2**30, task=isolation_tasks.allocate_too_much) as reader:
        with pytest.raises(ImageReadError) as caught:
            reader.read(tmp_path / "bomb.dcm")
    assert "more memory than allowed" in caught.value.reason


def test_unexpected_exceptions_are_reported_plainly(tmp_path):
    with IsolatedReader(task=isolation_tasks.raise_unexpected) as reader:
        with pytest.raises(DecoderBugError) as caught:
            reader.read(tmp_path / "x.dcm")
    assert "RuntimeError: internal decoder state corrupt" in caught.value.reason


def test_wire_format_round_trips_and_refuses_object_arrays(dicom_dir):
    image = read_image(dicom_dir / "966_fixed.dcm")
    header, arrays = encode_image(image)
    again = decode_image(header, arrays)
    assert np.array_equal(again.modality, image.modality) and again.metadata == image.metadata
    forged = json.loads(header)
    forged["stored"]["dtype"] = "object"
    with pytest.raises(ValueError, match="unexpected array dtype"):
        decode_image(json.dumps(forged).encode(), arrays)


def test_a_worker_is_not_started_while_an_import_has_sys_path_edited(dicom_dir, tmp_path):
    """OpenCV's loader puts its package folder (which holds a ``typing`` package) at the front of
    ``sys.path`` while it loads; a worker spawned in that window died importing ``typing``. The worker
    start waits for ``SYS_PATH_LOCK``, which such imports hold (``cxr_engine.spawning``)."""
    import sys
    import threading
    import time

    from cxr_engine.spawning import SYS_PATH_LOCK

    shadow = tmp_path / "shadow"
    (shadow / "typing").mkdir(parents=True)
    (shadow / "typing" / "__init__.py").write_text("raise ImportError('the shadowing typing package')\n")
    film = sorted(dicom_dir.glob("*.dcm"))[0]
    reader = IsolatedReader(timeout_s=60)
    results: list = []
    with SYS_PATH_LOCK:
        sys.path.insert(0, str(shadow))
        try:
            worker = threading.Thread(target=lambda: results.append(reader.read(film)))
            worker.start()
            time.sleep(0.5)  # the reader is now waiting to start its worker
        finally:
            sys.path.remove(str(shadow))
    worker.join(60)
    reader.close()
    assert results and results[0] is not None and results[0].stored.size > 0
