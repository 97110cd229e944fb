"""Every overlay of a heat-map colours what the app shows: Grad-CAM times the shown class's probability.

The app and the PDF coloured ``shown_heat``; the DICOM Secondary Capture (app and CLI) and the CLI's
``*_cam.png`` coloured the raw Grad-CAM, so a class at 30 % looked as red there as the winning class. A real
film (``CR-MONO1-10-chest.dcm``, non-square-pixel handling included) and a synthetic heat-map.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from cxr_engine.models.classifier import HeatmapResult, Prediction
from cxr_engine.outputs.report import ReportPage
from cxr_engine.pixels.overlay import blend, shown_heat
from cxr_engine.pixels.rendering import render, to_square_pixels
from cxr_engine.reading.read import read_image

PROBABILITY = 0.3  # the shown class's probability: its map at most 0.3, so only faint colour


@pytest.fixture(scope="module")
def film(dicom_dir):
    return read_image(dicom_dir / "CR-MONO1-10-chest.dcm")


@pytest.fixture(scope="module")
def result(film):
    rows, cols = np.mgrid[: film.shape[0], : film.shape[1]]
    heat = np.exp(-(((rows / film.shape[0] - 0.5) / 0.2) ** 2 + ((cols / film.shape[1] - 0.4) / 0.2) ** 2))
    prediction = Prediction(classes=("normal", "pneumonia", "covid"), probabilities=(0.6, PROBABILITY, 0.1),
                            model_name="test")
    return HeatmapResult(heatmap=heat.astype(np.float32), target_class="pneumonia", prediction=prediction)


def expected(film, result, opacity=0.5) -> np.ndarray:
    return blend(render(film), shown_heat(result.heatmap, PROBABILITY), opacity)


def test_shown_is_the_map_times_the_shown_class_probability(result):
    np.testing.assert_array_equal(result.shown(), result.heatmap * np.float32(PROBABILITY))
    assert result.shown().max() <= PROBABILITY + 1e-6


def test_the_raw_and_the_shown_overlay_differ_on_this_film(film, result):
    assert not np.array_equal(expected(film, result), blend(render(film), result.heatmap, 0.5))


def test_the_pdf_panel(film, result):
    page = ReportPage.for_image(film, render(film), heatmap_result=result)
    np.testing.assert_array_equal(page.heatmap, expected(film, result))


def test_the_secondary_capture_the_cli_writes(film, result):
    from cxr_engine.outputs.dicom_outputs.writer import default_film

    np.testing.assert_array_equal(default_film(film, result), to_square_pixels(expected(film, result), film.pixel_aspect))


def test_the_secondary_capture_the_app_writes(film, result):
    from cxr_desktop.dicom_send import displayed_film

    viewer = SimpleNamespace(render=lambda: render(film), heatmap_visible=True, heatmap_opacity=0.7, image=film,
                             rotation=0, flip_h=False, flip_v=False)
    np.testing.assert_array_equal(displayed_film(viewer, result),
                                  to_square_pixels(expected(film, result, 0.7), film.pixel_aspect))


def test_the_cli_overlay_png_and_the_raw_map_beside_it(film, result, tmp_path):
    from cxr_engine.batch import _write_heatmaps, heatmap_png_array

    row = SimpleNamespace(film=film, heatmap=result, out_of_scope="", corrected="")
    _write_heatmaps(row, 0, film.path, tmp_path)
    overlay = np.asarray(Image.open(row.overlay_path).convert("RGB"))
    shown = to_square_pixels(expected(film, result), film.pixel_aspect)
    np.testing.assert_array_equal(overlay[:shown.shape[0]], shown)  # the image as the app shows it, then its caption
    assert overlay.shape[1] == shown.shape[1] and overlay.shape[0] > shown.shape[0]
    np.testing.assert_array_equal(np.asarray(Image.open(row.heatmap_path)), heatmap_png_array(result.heatmap))  # raw


def test_the_cli_overlay_png_says_which_class_its_map_is_of(film, result, tmp_path):
    """A ``*_cam.png`` opened on its own showed a red area with nothing saying it was the Normal score's map at
    90 % (a reading radiologist's finding): its caption names the class, the probability and the model, and a
    flagged film's reasons (the PNG has no banner)."""
    from cxr_engine.batch import _write_heatmaps, heatmap_caption
    from cxr_engine.pixels.overlay import LEGEND_SHORT

    lines = heatmap_caption(result)
    assert lines[0].startswith("Grad-CAM heat-map: where the Pneumonia score rose (Pneumonia ")
    assert result.prediction.model_name in lines[0] and LEGEND_SHORT in lines[1] and "not where a finding" in lines[1]
    assert len(lines) == 2
    assert heatmap_caption(result, "inverted")[-1] == ("Outside what this model was trained for (shown as a negative "
                                                       "(inverted)): the heat-map is not reliable.")
    assert heatmap_caption(result, "uncertain")[-1].startswith("Close call")
    assert "less reliable" in heatmap_caption(result, "child-chest")[-1]
    heights = []
    for flag in ("", "inverted"):
        row = SimpleNamespace(film=film, heatmap=result, out_of_scope=flag, corrected="")
        _write_heatmaps(row, 0, film.path, tmp_path / (flag or "in-scope"))
        heights.append(Image.open(row.overlay_path).size[1])
    assert heights[1] > heights[0]  # the flagged film's note is on its PNG


def test_the_cli_overlay_png_says_when_the_averaged_networks_disagree(result):
    """A ``*_cam.png`` carried a close call's line but not that the two networks disagreed: a short line says so,
    after the close call's; none where they agree or for a single network."""
    from dataclasses import replace

    from cxr_engine.batch import heatmap_caption

    split = replace(result, prediction=replace(result.prediction, member_calls=(
        ("efficientnet-lite0", "pneumonia"), ("efficientnet-b1", "covid"))))
    lines = heatmap_caption(split)
    assert lines[-1] == "The two networks disagree (Pneumonia vs COVID-19)."
    assert len(lines) == 3
    close = heatmap_caption(split, "uncertain")
    assert close[-2].startswith("Close call") and close[-1] == "The two networks disagree (Pneumonia vs COVID-19)."
    agreed = replace(result, prediction=replace(result.prediction, member_calls=(
        ("efficientnet-lite0", "covid"), ("efficientnet-b1", "covid"))))
    assert not any("disagree" in line for line in heatmap_caption(agreed) + heatmap_caption(result))


def test_the_cli_overlay_png_of_a_film_shown_corrected_says_so(dicom_dir, tmp_path, monkeypatch):
    """``--auto-orient`` showed the upside-down JPEG 2000 film turned and un-inverted on its ``*_cam.png``, but
    only the CSV's ``warnings`` said so: beside the stored film in PACS the PNG looked like another film (a
    tester's finding). Its caption says first that the film is shown corrected and how, in the CSV's words
    (the caption text the CLI draws, read where it is drawn)."""
    import csv
    from pathlib import Path

    from cxr_engine.cli import main
    from cxr_engine.models.image_checks import check_image, correction_note
    from cxr_engine.outputs import png_caption
    from conftest import real_films
    from model_factory import BUNDLED_CARD

    turned, upright = "JPEG2KLossless_1s_1f_u_16_16.dcm", "RG1_J2KI.dcm"
    drawn = []
    draw = png_caption.with_caption
    monkeypatch.setattr(png_caption, "with_caption", lambda rgb, paragraphs: drawn.append(list(paragraphs))
                        or draw(rgb, paragraphs))
    folder = real_films(tmp_path / "in", dicom_dir, [turned, upright])
    table = tmp_path / "out.csv"
    assert main([str(folder), "--auto-orient", "--heatmap-dir", str(tmp_path / "maps"), "--csv", str(table),
                 "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation"]) == 0
    with open(table, newline="") as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    assert len(drawn) == 2 and all(Path(row["cam_path"]).is_file() for row in rows.values())
    captions = dict(zip(rows, drawn))  # drawn in the CSV's order
    note = correction_note(check_image(read_image(folder / turned)).correction)
    assert "upside down" in note and note in rows[turned]["warnings"]
    assert captions[turned][0] == "S" + note[1:] + "."  # "Shown corrected: the image checks found the film ... is not changed."
    assert captions[turned][1].startswith("Grad-CAM heat-map:")
    assert captions[upright][0].startswith("Grad-CAM heat-map:")
    assert not any("corrected" in line for line in captions[upright])


def test_the_caption_strip_holds_text_and_leaves_the_image_alone():
    from cxr_engine.outputs.png_caption import STRIP_RGB, with_caption

    image = np.full((300, 400, 3), 90, np.uint8)
    out = with_caption(image, ["Grad-CAM heat-map: where the Normal score rose (Normal 89.8 %)", "second line"])
    assert out.shape[0] > 300 and out.shape[1] == 400
    np.testing.assert_array_equal(out[:300], image)
    strip = out[300:]
    assert (strip == STRIP_RGB).all(axis=-1).mean() > 0.5 and strip.max() > 200  # dark, with white text on it
    assert with_caption(image, []) is image
    narrow = with_caption(np.zeros((50, 60, 3), np.uint8), ["a line far too long for an image sixty pixels wide"])
    assert narrow.shape[1] == 60 and narrow.shape[0] > 50
    with pytest.raises(ValueError):
        with_caption(np.zeros((5, 5), np.uint8), ["x"])


@pytest.mark.parametrize("width", [60, 256, 512, 2000])
def test_caption_lines_wrap_at_the_width_and_keep_every_word(width):
    """The caption's safety wording was cut with "..." on a 512-px film (a code review): lines wrap instead."""
    from cxr_engine.outputs.band_text import band_font, wrap_to_width

    font = band_font(11)
    text = ("Grad-CAM heat-map: where the Normal score rose (Normal 89.8 %, efficientnet-lite0-b1-average). "
            "It shows what drove the score, not where a finding is. /a/very/long/path/without/any/spaces/in/it.dcm")
    lines = wrap_to_width(text, font, width)
    assert all(font.getlength(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_caption_text_is_ascii_in_any_font():
    from cxr_engine.outputs.band_text import ascii_text

    assert ascii_text("Pneumonie – Lungenentzündung × 2 …") == "Pneumonie - Lungenentzundung x 2 ..."
