"""Framing degradations, the framing-shift test and the population lines of the evaluation."""
from __future__ import annotations

import numpy as np
import pytest


def ramp(size: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, size, dtype=np.float32), (size, 1))


class TestFramingSteps:
    def test_crop_keeps_the_box_and_the_shape(self):
        from training.degradation import cropped

        grey = ramp()
        out = cropped(grey, 0.0, 1.0, 0.5, 1.0)
        assert out.shape == grey.shape and out.dtype == np.float32
        assert out[:, 0].mean() == pytest.approx(0.5, abs=0.03) and out[:, -1].mean() == pytest.approx(1.0, abs=0.01)

    def test_zoom_out_fills_the_border_and_keeps_the_film(self):
        from training.degradation import zoomed_out

        grey = np.ones((100, 100), np.float32)
        out = zoomed_out(grey, 0.8, 0.6, 0.25)
        assert out[0, 0] == 0.25 and out[50, 50] == 1.0
        assert (out == 1.0).sum() == 80 * 60
        corner = zoomed_out(grey, 0.5, 0.5, 0.0, offset_y=0.0, offset_x=0.0)
        assert corner[:50, :50].min() == 1.0 and corner[50:, :].max() == 0.0

    def test_reposition_moves_the_film_and_leaves_corners_filled(self):
        from training.degradation import repositioned

        grey = np.ones((64, 64), np.float32)
        out = repositioned(grey, 0.0, 0.25, 0.0, fill=0.0)
        assert out[:16].max() == 0.0 and out[20:].min() == pytest.approx(1.0)

    def test_markers_burn_in_text_without_touching_the_input(self):
        from training.degradation import with_markers

        grey = np.full((128, 128), 0.5, np.float32)
        out = with_markers(grey, (("L", 0.2, 0.1, 0.1, 1.0),))
        assert (grey == 0.5).all() and out.max() == pytest.approx(1.0) and (out != 0.5).sum() > 20


class TestFramingShiftAugmentation:
    def test_identity_when_off_and_input_untouched(self):
        pytest.importorskip("torch")
        from training.data import FramingShift

        grey = ramp()
        before = grey.copy()
        np.testing.assert_array_equal(FramingShift(p=0.0)(grey, np.random.default_rng(0)), grey)
        outputs = [FramingShift(p=1.0)(grey, np.random.default_rng(seed)) for seed in range(30)]
        np.testing.assert_array_equal(grey, before)
        assert all(o.shape == grey.shape and o.dtype == np.float32 and 0 <= o.min() and o.max() <= 1 for o in outputs)
        assert sum(not np.allclose(o, grey) for o in outputs) >= 28
        again = FramingShift(p=1.0)(grey, np.random.default_rng(3))
        np.testing.assert_array_equal(again, outputs[3])


class TestFramingShiftTest:
    def test_every_framing_stays_in_range_and_changes_the_image(self, cxr3_dir):
        from training.framing_shift import FRAMING_SHIFTS, framed_display

        path = str(next((cxr3_dir / "images" / "normal").glob("*.jpg")))
        for name in FRAMING_SHIFTS:
            out = framed_display(path, 96, name)
            assert out.shape == (96, 96) and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0

    def test_check_counts_changed_calls(self):
        pytest.importorskip("sklearn")
        from training.framing_shift import FRAMING_CHANGE_MARGIN, FRAMING_SHIFTS, check_framing
        from training.processing_shift import shift_section

        labels = [0] * 10
        plain = np.log(np.tile([[.8, .1, .1]], (10, 1)))
        crop = plain.copy()
        crop[0] = np.log([.1, .1, .8])
        section = shift_section(labels, plain, {"thorax crop": crop, "burned-in markers": plain.copy()}, 1.0,
                                FRAMING_SHIFTS)
        assert section["shifts"]["thorax crop"]["changed"] == pytest.approx(0.1)
        assert section["shifts"]["thorax crop"]["description"] == FRAMING_SHIFTS["thorax crop"][0]
        failures = check_framing(section)
        assert len(failures) == 1 and "'thorax crop' changes 0.100" in failures[0] and FRAMING_CHANGE_MARGIN < 0.1
        assert check_framing(None) == []


class TestPopulations:
    ROWS = ([{"label": "pneumonia", "pred": "pneumonia", "source": "rsna_pneumonia", "age_group": "adult"}] * 8
            + [{"label": "pneumonia", "pred": "covid", "source": "rsna_pneumonia", "age_group": "adult"}] * 2
            + [{"label": "normal", "pred": "pneumonia", "source": "rsna_pneumonia", "age_group": "adult"}] * 1
            + [{"label": "normal", "pred": "covid", "source": "nih_cxr14", "age_group": "adult"}] * 1
            + [{"label": "normal", "pred": "normal", "source": "nih_cxr14", "age_group": "adult"}] * 19
            + [{"label": "normal", "pred": "pneumonia", "source": "kermany_pediatric", "age_group": "pediatric"}] * 3
            + [{"label": "normal", "pred": "normal", "source": "kermany_pediatric", "age_group": "pediatric"}] * 7)

    def test_figures_by_hand(self):
        from training.populations import population_section

        section = population_section(self.ROWS)
        rsna = section["adult_pneumonia_rsna"]
        assert (rsna["n"], rsna["recall"], rsna["precision"]) == (10, 0.8, 8 / 9)
        assert section["adult_normal_called_covid"]["rate"] == pytest.approx(1 / 21)
        assert section["adult_normal_called_covid_by_source"]["nih_cxr14"]["rate"] == pytest.approx(1 / 20)
        assert section["pediatric_normal_called_pneumonia"]["rate"] == pytest.approx(0.3)

    def test_check_names_each_failed_population(self):
        from training.populations import check_populations, population_section

        failures = check_populations(population_section(self.ROWS))
        assert len(failures) == 2
        assert any("adult normal called covid 0.048 > 0.03" in f for f in failures)
        assert any("pediatric normal called pneumonia 0.300 > 0.10" in f for f in failures)
        assert check_populations(None) == []
