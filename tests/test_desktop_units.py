"""The desktop app's pure parts (presets, drag rule, text, measurements, heat-map layer), its
settings store and its worker signals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings  # noqa: E402

from cxr_engine.pixels.image import CxrImage, ImageMetadata  # noqa: E402
from cxr_engine.pixels.windowing import LINEAR, Window, percentile_window  # noqa: E402
from cxr_desktop.annotation_model import ARROW, RULER, TEXT, Annotation, AnnotationStore, measure  # noqa: E402
from cxr_desktop.formatting import corner_text, pixel_readout  # noqa: E402
from cxr_desktop.heatmap import OPAQUE_FROM, TRANSPARENT_BELOW, heatmap_rgba  # noqa: E402
from cxr_desktop.presets import (  # noqa: E402
    DRAG_PIXELS_PER_AUTO_WIDTH, Auto, FromFile, PercentileBand, drag_step, drag_window, presets_for, percentile_band,
)
from cxr_desktop.settings import MAX_RECENT, AppSettings  # noqa: E402
from cxr_desktop.workers import create_worker  # noqa: E402


def ramp_image(invert: bool, windows=(), spacing=None, source=None) -> CxrImage:
    values = np.tile(np.arange(1000, dtype=np.int32), (20, 1))
    return CxrImage(path=Path("ramp.dcm"), stored=values, modality=values, invert=invert, bits_stored=12,
                    windows=tuple(windows), spacing_mm=spacing, spacing_source=source,
                    metadata=ImageMetadata(patient_name="DOE^JANE", patient_id="P1", modality="CR", view_position="PA"))


class TestPresets:
    def test_percentile_bands_mean_the_same_display_range_in_both_polarities(self):
        lung = PercentileBand("Lung", 0.5, 90.0)
        m2, m1 = lung.voi_for(ramp_image(False)), lung.voi_for(ramp_image(True))
        # The ramp holds 0..999 evenly (sampled every 4th): MONOCHROME2 shows the low values dark, MONOCHROME1 the high ones.
        assert (m2.low, m2.high) == pytest.approx((5, 899), abs=4)
        assert (m1.low, m1.high) == pytest.approx((99, 994), abs=4)
        assert m1.width == pytest.approx(m2.width, abs=1.0)

    def test_percentile_band_round_trips(self):
        for invert in (False, True):
            image = ramp_image(invert)
            band = percentile_band(image, PercentileBand("x", 20, 90).voi_for(image), "x")
            assert (band.low, band.high) == pytest.approx((20, 90), abs=0.5)

    def test_a_band_outside_0_to_100_or_upside_down_is_refused_naming_the_preset(self):
        for low, high in ((-1.0, 50.0), (10.0, 100.5), (80.0, 20.0), (float("nan"), 50.0)):
            with pytest.raises(ValueError, match="window preset 'Bad': percentiles"):
                PercentileBand("Bad", low, high)
        assert PercentileBand("Edge", 0.0, 0.0).voi_for(ramp_image(False)).width > 0

    def test_presets_every_film_has_come_first_then_the_files_own(self):
        image = ramp_image(False, windows=[Window(500, 400, LINEAR, "CHEST")])
        names = [p.name for p in presets_for(image)]
        # the keys 2-6 mean the same on every film; the file's own windows follow
        assert names == ["Default", "Auto", "Full range", "Lung", "Mediastinum", "File window 1: CHEST"]
        assert FromFile(0, "w").voi_for(image) == image.windows[0]
        assert isinstance(Auto().voi_for(image), Window)


class TestDragWindow:
    def test_right_widens_and_down_raises_the_centre_for_monochrome2(self):
        start = Window(500, 200)
        out = drag_window(start, 30, 10, 2.0, invert=False)
        assert (out.center, out.width) == (520, 260)
        assert out.function == LINEAR and start == Window(500, 200)

    def test_down_lowers_the_centre_for_an_inverted_display(self):
        assert drag_window(Window(500, 200), 0, 10, 2.0, invert=True).center == 480

    def test_width_never_collapses(self):
        assert drag_window(Window(500, 200), -10_000, 0, 2.0, invert=False).width >= 1.0

    def test_step_scales_with_the_image_range(self):
        image = ramp_image(False)
        assert drag_step(image) == pytest.approx(percentile_window(image.modality).width / DRAG_PIXELS_PER_AUTO_WIDTH)


class TestText:
    def test_corner_text_leaves_out_empty_lines(self):
        image = ramp_image(False)
        text = corner_text(image.metadata, image.shape, Window(500, 400), 0.5, 90, True, False, False)
        assert text.top_left == ("DOE, JANE", "ID P1")
        assert text.bottom_left[0] == "CR PA" and text.bottom_left[-1] == "1000 × 20 px"
        assert text.bottom_right == ("C 500 W 400", "Zoom 50 %", "rotated 90° flipped H")

    def test_pixel_readout_gives_mm_only_with_spacing(self):
        assert pixel_readout(ramp_image(False), 3, 10) == "x 10  y 3  value 10"
        calibrated = ramp_image(False, spacing=(0.2, 0.1), source="ImagerPixelSpacing")
        assert pixel_readout(calibrated, 3, 10) == "x 10  y 3  value 10  (1.1, 0.7 mm at detector)"
        assert pixel_readout(calibrated, 30, 10) == ""


class TestAnnotations:
    def test_ruler_in_mm_with_spacing_else_px(self):
        assert str(measure((0, 0), (30, 40), None)) == "50 px"
        assert str(measure((0, 0), (30, 40), (0.5, 0.5), "PixelSpacing")) == "25.0 mm"
        assert str(measure((0, 0), (10, 0), (1.0, 0.2), "ImagerPixelSpacing")) == "2.0 mm (detector)"

    def test_store_keeps_annotations_per_image(self):
        store = AnnotationStore()
        a = store.add(Path("a.dcm"), Annotation(ARROW, ((0, 0), (5, 5))))
        store.add(Path("b.dcm"), Annotation(TEXT, ((1, 1),), "note"))
        store.update(Path("a.dcm"), a.moved(2, 3))
        assert store.for_path(Path("a.dcm"))[0].points == ((2, 3), (7, 8))
        store.remove(Path("a.dcm"), a.id)
        assert store.count(Path("a.dcm")) == 0 and store.count(Path("b.dcm")) == 1

    def test_annotation_shape_is_checked(self):
        with pytest.raises(ValueError, match="needs 2 point"):
            Annotation(RULER, ((0, 0),))
        with pytest.raises(ValueError, match="unknown annotation kind"):
            Annotation("freehand", ((0, 0), (1, 1)))


def test_heatmap_layer_is_transparent_where_evidence_is_weak():
    heat = np.array([[0.0, TRANSPARENT_BELOW, (TRANSPARENT_BELOW + OPAQUE_FROM) / 2, OPAQUE_FROM, 1.0]], np.float32)
    rgba = heatmap_rgba(heat)
    assert rgba.shape == (1, 5, 4) and rgba.dtype == np.uint8
    alpha = rgba[0, :, 3].tolist()
    assert alpha[:2] == [0, 0] and alpha[2] in (127, 128) and alpha[3:] == [255, 255]


def test_settings_round_trip_in_a_private_file(tmp_path):
    settings = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert settings.device == "auto" and settings.backend == "auto"
    assert settings.model == "" and settings.recent_folders == []
    for i in range(MAX_RECENT + 2):
        settings.add_recent(tmp_path / f"f{i}")
    settings.add_recent(tmp_path / "f3")
    assert settings.recent_folders[0] == str(tmp_path / "f3") and len(settings.recent_folders) == MAX_RECENT
    settings.heatmap_opacity, settings.device, settings.model, settings.backend = 0.3, "cpu", "my-model", "onnx"
    settings.save_window_preset(PercentileBand("Soft", 10, 80))
    settings.sync()
    again = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert (again.heatmap_opacity, again.device, again.model) == (pytest.approx(0.3), "cpu", "my-model")
    assert again.backend == "onnx"
    assert again.window_presets == (PercentileBand("Soft", 10, 80),)
    with pytest.raises(ValueError):
        again.device = "tpu"
    with pytest.raises(ValueError):
        again.backend = "tensorflow"
    again.store.setValue("model/backend", "tensorflow")  # a hand-edited file falls back to auto
    assert again.backend == "auto"
    again.store.beginWriteArray("view/window_presets", 2)  # a hand-edited band is left out, the others kept
    again.store.setArrayIndex(1)
    for key, value in (("name", "Upside down"), ("low", 90.0), ("high", 10.0)):
        again.store.setValue(key, value)
    again.store.endArray()
    assert again.window_presets == (PercentileBand("Soft", 10, 80),)


def test_a_hand_edited_settings_file_reads_as_safe_values(tmp_path):
    settings = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.store.setValue("view/heatmap_opacity", 7)
    assert settings.heatmap_opacity == 1.0
    settings.store.setValue("view/heatmap_opacity", "half")
    assert settings.heatmap_opacity == 0.4
    settings.store.setValue("model/device", "tpu")
    assert settings.device == "auto"
    settings.model = None
    assert settings.model == ""
    assert AppSettings.reader_name.__doc__.startswith("The reading physician's name")


def test_the_heatmap_opacity_saved_under_its_former_key_is_kept(tmp_path):
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("view/cam_opacity", 0.25)  # as versions before the rename saved it
    settings = AppSettings(store)
    assert settings.heatmap_opacity == pytest.approx(0.25)
    settings.heatmap_opacity = 0.6
    settings.sync()
    again = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert again.heatmap_opacity == pytest.approx(0.6)
    assert float(again.store.value("view/heatmap_opacity")) == pytest.approx(0.6)
    assert float(again.store.value("view/cam_opacity")) == pytest.approx(0.25)  # left for an older version


class TestWorkers:
    def test_function_worker_signals_in_order(self, qtbot):
        worker = create_worker(lambda x: x * 2, 21)
        returned = []
        worker.returned.connect(returned.append)
        with qtbot.waitSignals([worker.started, worker.returned, worker.finished], order="strict", timeout=5000):
            worker.start()
        assert returned == [42]

    def test_errors_reach_the_gui_thread(self, qtbot):
        def fail():
            raise OSError("disk gone")

        worker = create_worker(fail)
        errors = []
        worker.errored.connect(errors.append)
        with qtbot.waitSignals([worker.started, worker.errored, worker.finished], order="strict", timeout=5000):
            worker.start()
        assert [type(e) for e in errors] == [OSError]

    def test_overlapping_workers_leave_the_warnings_hook_alone(self, qtbot):
        """Two workers that overlap and end in start order: superqt's own ``run`` swaps
        ``warnings.showwarning`` per worker with a non-thread-safe ``catch_warnings``, which left the
        first worker's hook installed for good (a later warning then emitted on a deleted object)."""
        import threading
        import warnings

        original = warnings.showwarning
        running = [threading.Event(), threading.Event()]
        may_end = [threading.Event(), threading.Event()]

        def job(i):
            running[i].set()
            may_end[i].wait(5)
            return i

        first, second = create_worker(job, 0), create_worker(job, 1)
        first.start()
        assert running[0].wait(5)
        second.start()
        assert running[1].wait(5)
        may_end[0].set()
        qtbot.waitUntil(lambda: first.done, timeout=5000)
        may_end[1].set()
        qtbot.waitUntil(lambda: second.done, timeout=5000)
        assert warnings.showwarning is original

    def test_generator_worker_yields_and_can_be_cancelled(self, qtbot):
        seen = []

        def count():
            for i in range(10_000):
                yield i

        worker = create_worker(count)
        worker.yielded.connect(seen.append)
        worker.yielded.connect(lambda v: worker.quit() if v == 3 else None)
        with qtbot.waitSignals([worker.aborted, worker.finished], order="strict", timeout=5000):
            worker.start()
        qtbot.wait(50)
        assert seen[:4] == [0, 1, 2, 3] and len(seen) < 10_000

    def test_when_finished_never_misses_a_worker_that_already_finished(self, qtbot):
        calls = []
        worker = create_worker(lambda: None)
        worker.when_finished(lambda: calls.append("early"))
        worker.start()
        qtbot.waitUntil(lambda: worker.done, timeout=5000)
        worker.when_finished(lambda: calls.append("late"))  # connecting to ``finished`` now would never fire
        assert calls == ["early", "late"]


def test_signal_emission_keeps_reference_counts_of_true_and_false():
    """PySide6 6.12.0 dropped one reference to the bool that ``emit()`` returns on every call,
    so after a few thousand signals (a 20,000-file folder) the app aborted in ``bool_dealloc``."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        value = Signal(object)

    emitter, received = Emitter(), []
    emitter.value.connect(received.append)
    before = sys.getrefcount(True) + sys.getrefcount(False)
    for index in range(200):
        emitter.value.emit(index)
    assert len(received) == 200
    assert sys.getrefcount(True) + sys.getrefcount(False) - before > -50, "Signal.emit leaks bool references"


def test_heatmap_layer_has_the_engine_colours_and_the_fade_alpha():
    from cxr_engine.pixels.overlay import colorize, heat_alpha

    heat = np.random.default_rng(0).random((150, 53), dtype=np.float32)  # more than one block of rows
    heat[0, :4] = [0.0, 1.0, TRANSPARENT_BELOW, OPAQUE_FROM]
    for probability in (1.0, 0.63, 0.2, 0.0):
        shown = heat * np.float32(probability)
        want = np.dstack([colorize(shown), np.rint(heat_alpha(shown) * 255.0).astype(np.uint8)])
        rgba = heatmap_rgba(heat, probability)
        assert rgba.flags.c_contiguous and rgba.dtype == np.uint8
        np.testing.assert_array_equal(rgba, want)


def test_a_failure_reads_as_the_files_reason_else_the_exceptions_type_and_message(tmp_path):
    from cxr_desktop.formatting import cannot_display_text, failure_reason
    from cxr_engine import read_image
    from cxr_engine.errors import FileError

    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a DICOM file at all")
    with pytest.raises(FileError) as caught:
        read_image(broken)
    assert failure_reason(caught.value) == caught.value.reason and "broken.dcm" not in caught.value.reason
    assert failure_reason(MemoryError("out of memory")) == "MemoryError: out of memory"
    assert cannot_display_text("truncated") == "This file cannot be displayed:\ntruncated"
