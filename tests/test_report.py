"""PDF export: content as extractable text, de-identification (PS3.15 Annex E), atomic writes."""
from __future__ import annotations

import io
import re
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reportlab")
pypdf = pytest.importorskip("pypdf")

from cxr_engine.outputs import report  # noqa: E402
from cxr_engine.outputs.deidentify import (  # noqa: E402
    IDENTIFYING_FIELDS, REDACTED, RETAINED_FIELDS, date_spellings, full_name_patterns,
    redact_generated_text, redact_text,
    report_identifiers,
)
from cxr_engine.display_text import format_person_name  # noqa: E402
from cxr_engine.pixels.image import ImageMetadata  # noqa: E402
from cxr_engine.models.torch_backend import HeatmapResult, Prediction  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402
from cxr_engine.models.model_card import CLASSES, INTENDED_USE, ModelCard  # noqa: E402
from cxr_engine.pixels.rendering import render  # noqa: E402
from cxr_engine.outputs.report import ReportPage, write_report  # noqa: E402

PROBS = (0.123, 0.7134, 0.1636)  # → "12.3 %", "71.3 %", "16.4 %"
SYNTHETIC = ImageMetadata(
    patient_name="DOE^JANE^Q", patient_id="PAT123", patient_birth_date="19800101", patient_sex="F",
    patient_age="044Y", study_instance_uid="1.2.3.4.5.6", study_date="20240131", study_time="101500",
    study_description="CHEST PA JANE", accession_number="ACC999", series_instance_uid="1.2.3.4.5.7",
    series_number="2", series_description="PA erect", sop_instance_uid="1.2.3.4.5.8", instance_number="1",
    modality="CR", body_part="CHEST", view_position="PA", manufacturer="Acme",
    institution_name="St Elsewhere Hospital",
)
WHEN = datetime(2025, 3, 4, 15, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard(
        name="effnet-b0-test", architecture="efficientnet_b0", classes=list(CLASSES), input_size=224, in_chans=3,
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], preprocessing_version="1",
        weights_file="effnet-b0-test.safetensors", weights_sha256="0" * 64, meets_bar=False,
        test_metrics={"accuracy": 0.912, "macro_f1": 0.9, "n": 1234},
    )


@pytest.fixture(scope="module")
def images(dicom_dir):
    names = ("CR-MONO1-10-chest.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm",
             "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    return {name: read_image(dicom_dir / name) for name in names}


def gaussian_blob(shape, centre=(0.55, 0.35), sigma=0.15) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    dy, dx = (rows / shape[0] - centre[0]) / sigma, (cols / shape[1] - centre[1]) / sigma
    return np.exp(-(dy ** 2 + dx ** 2) / 2).astype(np.float32)


def page_for(image, card, comment="", **kwargs) -> ReportPage:
    grey = render(image)
    prediction = Prediction(tuple(CLASSES), PROBS, card.name)
    heatmap_result = HeatmapResult(gaussian_blob(grey.shape), "pneumonia", prediction)
    return ReportPage.for_image(image, np.repeat(grey[..., None], 3, axis=2), heatmap_result=heatmap_result,
                                comment=comment, **kwargs)


def synthetic_page(card, comment="") -> ReportPage:
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    prediction = Prediction(tuple(CLASSES), PROBS, card.name)
    return ReportPage(displayed=grey, metadata=SYNTHETIC, prediction=prediction, comment=comment,
                      warnings=("window fallback for pat123: automatic window shown",),
                      file_name="DOE_JANE_PAT123.dcm")


def pdf_text(path) -> tuple[str, str, int]:
    """Text of every page (whitespace collapsed), the document info as text, and the page count."""
    reader = pypdf.PdfReader(path)
    text = " ".join(page.extract_text() for page in reader.pages)
    info = " ".join(str(v) for v in (reader.metadata or {}).values())
    return re.sub(r"\s+", " ", text), info, len(reader.pages)


def identifiers(metadata: ImageMetadata) -> list[str]:
    """Every identifying string the report could print for this patient, in its likely spellings."""
    name_parts = [p for p in re.split(r"[\^=\s]+", metadata.patient_name) if len(p) >= 2]
    values = [metadata.patient_name, format_person_name(metadata.patient_name), *name_parts,
              metadata.patient_id, metadata.accession_number, *date_spellings(metadata.patient_birth_date),
              metadata.study_instance_uid, metadata.series_instance_uid, metadata.sop_instance_uid,
              metadata.institution_name, *date_spellings(metadata.study_date)]
    return [v for v in values if v and len(v) >= 2]


def write(tmp_path, pages, card, deidentify, name="report.pdf", **kwargs):
    path = tmp_path / name
    write_report(path, pages, model_card=card, deidentify=deidentify, reader_name="Dr Ann Reader",
                     generated_at=WHEN, app_version="0.1.0", **kwargs)
    return path


class TestContent:
    def test_probabilities_disclaimer_and_model(self, tmp_path, images, card):
        page = page_for(images["CR-MONO1-10-chest.dcm"], card, comment="Right lower zone opacity.")
        text, info, count = pdf_text(write(tmp_path, [page], card, deidentify=False))
        assert count == 2  # the film's page, then the model's known limits
        for expected in ("Normal 12.3 %", "Pneumonia 71.3 %", "COVID-19 16.4 %", INTENDED_USE,
                         "effnet-b0-test", "this model is below the project's bar (its model card says which",
                         "Grad-CAM heat-map: where the Pneumonia score rose", "Grad-CAM × class probability for Pneumonia",
                         "Right lower zone opacity.", "Dr Ann Reader", "2025-03-04 15:30", "Page 1 of 2",
                         "FUJI95714", "CR-MONO1-10-chest.dcm", "Test set: accuracy 91.2 %"):
            assert expected in text, expected
        assert "CXR Reader — chest X-ray AI summary" in info

    def test_the_patients_age_group_leads_the_test_figures(self, tmp_path, images, card):
        """A reading radiologist's finding: an adult's page led with the whole test split's accuracy, far above
        the adults' own, which came later under the limits."""
        from dataclasses import replace

        grouped = replace(card, test_metrics={**card.test_metrics, "by_age_group": {
            "adult": {"n": 134, "accuracy": 0.821, "recall": {"normal": 0.936, "pneumonia": 0.78, "covid": 0.739}},
            "pediatric": {"n": 787, "accuracy": 0.959}}})
        page = page_for(images["CR-MONO1-10-chest.dcm"], grouped)
        adult = replace(page, metadata=replace(page.metadata, patient_age="075Y"))
        text, _, _ = pdf_text(write(tmp_path, [adult], grouped, deidentify=False, name="adult.pdf"))
        text = " ".join(text.split())
        assert "Test accuracy: adults with a recorded age 82.1 % (n = 134), all 91.2 % (n = 1,234)." in text
        # the adults' own sensitivities (COVID-19 74 % where all films' was higher), not the pooled ones
        assert ("Sensitivity (adults with a recorded age): Normal 93.6 % · Pneumonia 78.0 % · COVID-19 73.9 %."
                in text)
        unknown = replace(page, metadata=replace(page.metadata, patient_age="", patient_birth_date=""))
        text, _, _ = pdf_text(write(tmp_path, [unknown], grouped, deidentify=False, name="unknown.pdf"))
        assert "Test set: accuracy 91.2 %" in text and "adults 82.1" not in text  # age unknown: no group
        assert "Sensitivity (adults" not in text  # the children's figures lack sensitivities: the pooled ones
        both = replace(grouped, test_metrics={**grouped.test_metrics, "by_age_group": {
            **grouped.test_metrics["by_age_group"],
            "pediatric": {"n": 787, "accuracy": 0.959, "recall": {"normal": 0.981, "pneumonia": 0.955, "covid": 0.5}}}})
        text, _, _ = pdf_text(write(tmp_path, [unknown], both, deidentify=False, name="unknown_both.pdf"))
        text = " ".join(text.split())
        # age unknown and both groups' sensitivities on the card: each group's, not the pooled (mostly children's)
        assert ("Sensitivity (adults with a recorded age): Normal 93.6 % · Pneumonia 78.0 % · COVID-19 73.9 %."
                in text) and "Sensitivity (children): Normal 98.1 % · Pneumonia 95.5 %" in text
        assert "Sensitivity: " not in text
        # a 6-year-old is in neither group (the children's figures are of 1-5-year-olds): no group's figures
        six = replace(page, metadata=replace(page.metadata, patient_age="006Y"))
        text, _, _ = pdf_text(write(tmp_path, [six], grouped, deidentify=False, name="six.pdf"))
        assert "Test set: accuracy 91.2 %" in text and "children 95.9" not in text

    def test_few_films_give_counts_and_an_adult_is_told_how_often_a_pneumonia_call_was_right(self, tmp_path, images,
                                                                                          card):
        from dataclasses import replace

        grouped = replace(card, test_metrics={**card.test_metrics, "by_age_group": {
            "pediatric": {"n": 787, "accuracy": 0.959, "recall": {"normal": 0.981, "pneumonia": 0.955, "covid": 0.0},
                          "confusion": [[203, 3, 1], [26, 552, 0], [2, 0, 0]]},
            "adult": {"n": 134, "accuracy": 0.821, "recall": {"normal": 0.936, "pneumonia": 0.780, "covid": 0.739},
                      "confusion": [[44, 3, 0], [6, 32, 3], [4, 8, 34]]}},
            "populations": {"adult_pneumonia_all_sources": {"n": 41, "called": 59, "hits": 32}}})
        page = page_for(images["CR-MONO1-10-chest.dcm"], grouped)
        child = replace(page, metadata=replace(page.metadata, patient_age="004Y"))
        text, _, _ = pdf_text(write(tmp_path, [child], grouped, deidentify=False, name="child.pdf"))
        assert "Sensitivity (children): Normal 98.1 % · Pneumonia 95.5 % · COVID-19 0 of 2." in " ".join(text.split())
        adult = replace(page, metadata=replace(page.metadata, patient_age="060Y"))
        text, _, _ = pdf_text(write(tmp_path, [adult], grouped, deidentify=False, name="adult.pdf"))
        # The adults' sensitivities and this line count the same 134 films (not 59 calls over every adult source).
        words = " ".join(text.split())
        assert "Sensitivity (adults" in words and "Pneumonia 78.0 %" in words
        assert "In adults with a recorded age, a Pneumonia call was right 32 of 43 times." in words
        assert "of 59" not in words
        # A damaged card (a short row, a missing count) leaves the line out; the page is still made.
        for confusion in ([[5], [3], [1]], [[44, 3, 0], [6, None, 3], [4, 8, 34]]):
            damaged = replace(grouped, test_metrics={**grouped.test_metrics, "by_age_group": {
                "adult": {**grouped.test_metrics["by_age_group"]["adult"], "confusion": confusion}}})
            text, _, _ = pdf_text(write(tmp_path, [adult], damaged, deidentify=False, name="damaged.pdf"))
            assert "Pneumonia call was right" not in " ".join(text.split())

    def test_a_model_below_the_bar_names_the_checks_it_fails(self, tmp_path, images, card):
        from dataclasses import replace

        failing = replace(card, test_metrics={**card.test_metrics, "bar_failures": ["test accuracy 0.912 < 0.92",
                                                                                   "test ECE 0.0600 > 0.05"]})
        page = page_for(images["CR-MONO1-10-chest.dcm"], failing)
        text, _, _ = pdf_text(write(tmp_path, [page], failing, deidentify=False))
        text = " ".join(text.split())
        assert "Caution: below the project's bar (2 checks, page 2)." in text and "Its known limits and the " \
            "checks it fails (below the project's bar): page 2." in text
        assert "Below the project's bar: it fails test accuracy 0.912 < 0.92; test ECE 0.0600 > 0.05." in text
        passing = replace(card, meets_bar=True)
        text, _, _ = pdf_text(write(tmp_path, [page_for(images["CR-MONO1-10-chest.dcm"], passing)], passing,
                                    deidentify=False, name="passing.pdf"))
        assert "Meets the project's bar" in text and "below the project's bar" not in text
        assert " ".join(text.split()).count("Meets the project's bar") == 1, "said once: in the film page's Model box"

    def test_top_class_is_bold(self, tmp_path, images, card):
        path = write(tmp_path, [page_for(images["CR-MONO1-10-chest.dcm"], card)], card, deidentify=False)
        bold_runs = []

        def visitor(text, cm, tm, font, size):
            if font and "Bold" in str(font.get("/BaseFont", "")) and text.strip():
                bold_runs.append(text.strip())

        pypdf.PdfReader(path).pages[0].extract_text(visitor_text=visitor)
        assert "Pneumonia" in bold_runs and "71.3 %" in bold_runs
        assert "Normal" not in bold_runs and "12.3 %" not in bold_runs

    def test_images_are_embedded_as_jpeg_and_small(self, tmp_path, images, card):
        path = write(tmp_path, [page_for(images["JPEG2KLossless_1s_1f_u_16_16.dcm"], card)], card, False)
        data = path.read_bytes()
        assert data.count(b"/DCTDecode") == 2
        assert len(data) < 1_500_000

    def test_non_latin_name_and_warnings(self, tmp_path, images, card):
        image = images["JPEG2KLossless_1s_1f_u_16_16.dcm"]
        text, _, _ = pdf_text(write(tmp_path, [page_for(image, card)], card, deidentify=False))
        assert image.warnings and "automatic window" in text
        family = image.metadata.patient_name.split("^")[0]
        if report._fonts(report.FONT_CANDIDATES).unicode:
            assert family in text

    def test_without_truetype_fonts_unsupported_characters_become_question_marks(self, tmp_path, card,
                                                                                   monkeypatch):
        monkeypatch.setattr(report, "FONT_CANDIDATES", ())
        page = ReportPage(displayed=np.zeros((8, 8), np.uint8), metadata=ImageMetadata(patient_name="Жанна^Ωμέγα"),
                          prediction=Prediction(tuple(CLASSES), PROBS, card.name), comment="Зона")
        text, _, _ = pdf_text(write(tmp_path, [page], card, deidentify=False))
        assert "?????, ?????" in text and "Pneumonia 71.3 %" in text

    def test_not_classified_page(self, tmp_path, card):
        page = ReportPage(displayed=np.zeros((16, 16, 3), np.uint8), not_classified_reason="image too small")
        text, _, _ = pdf_text(write(tmp_path, [page], card, deidentify=False))
        assert "Not classified: image too small" in text
        assert "71.3 %" not in text and "No heat-map" in text

    def test_a_study_of_three_images_gives_three_pages(self, tmp_path, images, card):
        pages = [page_for(image, card) for image in images.values()]
        text, _, count = pdf_text(write(tmp_path, pages, card, deidentify=False))
        assert count == 4  # and the model's known limits, once
        assert all(f"Page {i} of 4" in text for i in (1, 2, 3, 4))
        assert text.count("The model and its known limits") == 1 and text.count("Its known limits") == 3

    def test_the_subject_counts_films_not_pages(self, tmp_path, images, card):
        """Tester: a one-film PDF's Subject said "AI summary of 2 chest X-ray image(s)": it counted the model's
        limits page (and a page of films left out) as films."""
        page = page_for(images["CR-MONO1-10-chest.dcm"], card)
        for left_out, pages in (((), 2), ([(Path("im2.dcm"), "invalid image size 0×1024")], 3)):
            path = write(tmp_path, [page], card, deidentify=False, left_out=left_out)
            assert len(pypdf.PdfReader(path).pages) == pages
            assert pypdf.PdfReader(path).metadata.subject == f"AI summary of 1 chest X-ray image(s). {INTENDED_USE}"

    def test_bad_input_is_refused(self, tmp_path, card):
        with pytest.raises(ValueError, match="uint8"):
            ReportPage(displayed=np.zeros((4, 4), np.float32))
        with pytest.raises(ValueError, match="at least one page"):
            write(tmp_path, [], card, deidentify=False)


class TestHeatmapLegend:
    """Finding 17: the legend said "Outline mode: contour at 0.5" under a colour heat-map."""

    @pytest.mark.parametrize("style", ["colour", "outline"])
    def test_outline_level_only_for_an_outline(self, tmp_path, images, card, style):
        from dataclasses import replace

        page = replace(page_for(images["CR-MONO1-10-chest.dcm"], card), heatmap_style=style)
        text, _, _ = pdf_text(write(tmp_path, [page], card, deidentify=False))
        assert "Grad-CAM × class probability for Pneumonia" in text
        assert ("contour" in text) == (style == "outline"), text

    def test_unknown_style_is_refused(self, images, card):
        with pytest.raises(ValueError, match="heatmap_style"):
            page_for(images["CR-MONO1-10-chest.dcm"], card).__class__(
                displayed=np.zeros((4, 4), np.uint8), heatmap_style="contours")

    def test_footer_names_the_app_once(self, tmp_path, images, card):
        text, _, _ = pdf_text(write(tmp_path, [page_for(images["CR-MONO1-10-chest.dcm"], card)], card, deidentify=False))
        assert "CXR Reader 0.1.0 · Research use only" in text and "CXR Reader CXR Reader" not in text


class TestDeidentifiedExport:
    @pytest.mark.parametrize("name", ["CR-MONO1-10-chest.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm", "synthetic"])
    def test_no_identifier_in_text_or_document_info(self, tmp_path, images, card, name):
        if name == "synthetic":
            page, metadata = synthetic_page(card, comment="Jane doe (pat123, acc999), born 01.01.1980."), SYNTHETIC
        else:
            metadata = images[name].metadata
            page = page_for(images[name], card, comment=f"Seen with {metadata.patient_name}.")
        text, info, _ = pdf_text(write(tmp_path, [page], card, deidentify=True))
        assert "De-identified report" in text and "Pneumonia 71.3 %" in text and INTENDED_USE in text
        everything = f"{text} {info}".casefold()
        for value in identifiers(metadata) + ["Dr Ann Reader", page.file_name]:
            assert value.casefold() not in everything, value

    def test_a_name_that_is_a_word_leaves_the_warnings_whole(self, tmp_path, images, card):
        """Finding 5: a patient "Test^Lateral" turned the lateral warning into "[removed] view: ..."."""
        from dataclasses import replace

        page = page_for(images["CR-MONO1-10-chest.dcm"], card, comment="patient Test Lateral, seen today")
        metadata = replace(page.metadata, patient_name="Test^Lateral")
        page = replace(page, metadata=metadata, warnings=(
            "lateral view: the model is made for frontal (PA/AP) chest films",
            "could not read /films/Lateral_Test/prior.dcm"))
        text, info, _ = pdf_text(write(tmp_path, [page], card, deidentify=True))
        assert "lateral view: the model is made for frontal (PA/AP) chest films" in text
        assert f"could not read {REDACTED}" in text  # a de-identified report names no path (privacy audit)
        assert f"patient {REDACTED} {REDACTED}, seen today" in text
        assert "test lateral" not in text.casefold() and "lateral_test" not in text.casefold()

    def test_sex_and_age_are_removed(self, tmp_path, card):
        text, _, _ = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=True))
        assert "Female" not in text and "44 years" not in text
        assert "CR · PA · CHEST" in text and f"window fallback for {REDACTED}" in text

    def test_identified_export_shows_them(self, tmp_path, card):
        text, _, _ = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=False))
        for expected in ("DOE, JANE Q", "PAT123", "1980-01-01", "ACC999", "Female", "44 years", "St Elsewhere"):
            assert expected in text, expected


class TestAtomicWrite:
    def test_failure_while_drawing_leaves_the_old_file(self, tmp_path, card, monkeypatch):
        path = tmp_path / "report.pdf"
        path.write_bytes(b"old report")

        def broken(*args, **kwargs):
            raise RuntimeError("drawing failed")

        monkeypatch.setattr(report, "_draw_results", broken)
        with pytest.raises(RuntimeError, match="drawing failed"):
            write(tmp_path, [synthetic_page(card)], card, deidentify=False)
        assert path.read_bytes() == b"old report"
        assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]

    def test_failure_while_writing_leaves_the_old_file(self, tmp_path, card, monkeypatch):
        import cxr_engine.outputs.atomic

        path = tmp_path / "report.pdf"
        path.write_bytes(b"old report")

        def full_disk(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(cxr_engine.outputs.atomic.os, "replace", full_disk)
        with pytest.raises(report.ReportError, match="No space left"):
            write(tmp_path, [synthetic_page(card)], card, deidentify=False)
        assert path.read_bytes() == b"old report"
        assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]

    def test_success_replaces_the_file(self, tmp_path, card):
        path = tmp_path / "report.pdf"
        path.write_bytes(b"old report")
        write(tmp_path, [synthetic_page(card)], card, deidentify=False)
        assert path.read_bytes().startswith(b"%PDF-")
        assert pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages


class TestReportIdentifiers:
    def test_every_metadata_field_is_classified_once(self):
        names = {f.name for f in fields(ImageMetadata)}
        assert set(IDENTIFYING_FIELDS) | set(RETAINED_FIELDS) == names
        assert not set(IDENTIFYING_FIELDS) & set(RETAINED_FIELDS)

    def test_deidentified_rows_hold_only_retained_fields(self):
        rows = dict(report_identifiers(SYNTHETIC, deidentify=True))
        assert rows == {"Series": "2", "Instance": "1", "Modality / view": "CR · PA · CHEST", "Manufacturer": "Acme"}

    def test_retain_patient_characteristics_option(self):
        rows = dict(report_identifiers(SYNTHETIC, deidentify=True, retain_patient_characteristics=True))
        assert rows["Sex"] == "Female" and rows["Age"] == "44 years"
        assert "Patient" not in rows and "Birth date" not in rows

    def test_identified_rows_are_formatted(self):
        rows = dict(report_identifiers(SYNTHETIC, deidentify=False))
        assert rows["Patient"] == "DOE, JANE Q"
        assert rows["Birth date"] == "1980-01-01"
        assert rows["Study date"] == "2024-01-31 10:15"
        assert rows["Series"] == "2 · PA erect"

    def test_empty_values_are_omitted(self):
        assert report_identifiers(ImageMetadata(modality="DX"), deidentify=False) == [("Modality / view", "DX")]


class TestRedactText:
    def test_name_parts_ids_and_birth_date_case_insensitive(self):
        text = "Jane DOE, id pat123 / Acc999, born 1980-01-01; q sign normal."
        out = redact_text(text, SYNTHETIC)
        assert out == f"{REDACTED} {REDACTED}, id {REDACTED} / {REDACTED}, born {REDACTED}; q sign normal."

    def test_short_parts_and_embedded_letters_are_left_alone(self):
        metadata = ImageMetadata(patient_name="AL^X^LI")
        assert redact_text("Normal lungs, no lingula change. Al was here.", metadata) == \
            f"Normal lungs, no lingula change. {REDACTED} was here."

    def test_non_latin_pn_groups(self):
        metadata = ImageMetadata(patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう")
        assert redact_text("山田 tarou", metadata) == f"{REDACTED} {REDACTED}"

    def test_nothing_to_redact(self):
        assert redact_text("clear lungs", ImageMetadata()) == "clear lungs"


class TestRedactGeneratedText:
    """The app's own messages lose identifiers, not their words (finding 5)."""

    LATERAL = ImageMetadata(patient_name="Test^Lateral", patient_id="PID-1", accession_number="ACC-9",
                            patient_birth_date="19800101")

    def test_message_words_stay_when_the_name_is_one_of_them(self):
        warning = "lateral view: the model is made for frontal (PA/AP) chest films"
        assert redact_generated_text(warning, self.LATERAL) == warning
        assert redact_generated_text("normal, lateral.", self.LATERAL) == "normal, lateral."

    def test_full_name_in_any_order_goes(self):
        for spelling in ("Test Lateral", "LATERAL TEST", "Lateral, Test", "test^lateral", "Lateral_Test"):
            assert redact_generated_text(f"seen: {spelling}.", self.LATERAL) == f"seen: {REDACTED}.", spelling

    def test_name_components_in_paths_and_ids_go(self):
        # An absolute path goes whole (privacy audit, 2026-11-30: a folder may be named after a date or a UID too);
        # a relative one loses the name components it holds.
        out = redact_generated_text("cannot read C:\\scans\\lateral\\PID-1.dcm (ACC-9, 01.01.1980)", self.LATERAL)
        assert out == f"cannot read {REDACTED} ({REDACTED}, {REDACTED})"
        assert redact_generated_text("/data/test/x.dcm", self.LATERAL) == REDACTED
        assert redact_generated_text("data/test/x.dcm", self.LATERAL) == f"data/{REDACTED}/x.dcm"

    def test_free_text_still_loses_every_component(self):
        assert redact_text("patient Test Lateral in lateral view", self.LATERAL) == \
            f"patient {REDACTED} {REDACTED} in {REDACTED} view"

    def test_full_name_patterns(self):
        assert full_name_patterns("Anonymized") == []
        assert full_name_patterns("DOE^^") == []
        assert len(full_name_patterns("DOE^JANE^Q=山田^太郎")) == 6  # 4 orders with the middle name, 2 without


class TestImagesLeftOut:
    """A study's damaged films were left out of its PDF without a word in it (tester, 2026-11-30): whoever
    reads the PDF must know it does not cover every image chosen."""

    LEFT_OUT = [(Path("DOE_JANE_im2.dcm"), "pixel data truncated: the file holds 349,526 of the 1,048,576 bytes"),
                (Path("DOE_JANE_im3.dcm"), "invalid image size 0×1024")]

    def test_a_last_page_names_each_image_left_out_and_why(self, tmp_path, card):
        text, _, count = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=False,
                                        left_out=self.LEFT_OUT))
        assert count == 3 and "Page 2 of 3" in text  # the films, those left out, the model's limits
        assert "2 of the 3 images of this export could not be included; the 1 page(s) before cover" in text
        assert "DOE_JANE_im2.dcm: pixel data truncated: the file holds 349,526 of the 1,048,576 bytes" in text
        assert "DOE_JANE_im3.dcm: invalid image size 0×1024" in text

    def test_de_identified_it_withholds_the_file_names(self, tmp_path, card):
        quoting = [*self.LEFT_OUT, (Path("/scans/DOE_JANE_im4.dcm"), "/scans/DOE_JANE_im4.dcm: could not read file")]
        text, _, _ = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=True, left_out=quoting))
        assert "Image 1 not included: pixel data truncated" in text and "Image 2 not included: invalid" in text
        assert "Image 3 not included: (file): could not read file" in text  # a reason that quoted its path
        assert "DOE" not in text

    def test_many_images_left_out_fit_their_page(self, tmp_path, card):
        many = [(Path(f"film_{i:03d}.dcm"), "pixel data truncated: the file holds 1,000 of the 1,048,576 bytes")
                for i in range(200)]
        text, _, count = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=False, left_out=many))
        assert count == 3 and "200 of the 201 images of this export could not be included" in text
        shown = text.count("film_")
        assert 20 < shown < 200 and f"… and {200 - shown} more, each named with its reason in the app's Problems" in text

    def test_without_images_left_out_there_is_no_such_page(self, tmp_path, card):
        text, _, count = pdf_text(write(tmp_path, [synthetic_page(card)], card, deidentify=False))
        assert count == 2 and "not included" not in text
