"""The model's limits in words, from whatever card is loaded (cxr_engine.models.model_limits)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.model_limits import calibration_line, known_limits, model_limits, reliability_table
from cxr_engine.models.classifier import Prediction

from model_factory import BUNDLED_CARD


def bundled() -> ModelCard:
    return ModelCard.load(BUNDLED_CARD)


def prediction(card: ModelCard, probabilities) -> Prediction:
    return Prediction(tuple(card.classes), tuple(float(p) for p in probabilities), card.name)


class TestReliabilityTable:
    def test_counts_per_class_and_bin_by_hand(self):
        probs = np.array([[0.95, 0.03, 0.02], [0.91, 0.05, 0.04], [0.15, 0.80, 0.05], [0.05, 0.05, 0.90],
                          [1.0, 0.0, 0.0]])
        labels = [0, 2, 1, 2, 0]
        table = reliability_table(probs, labels, ("normal", "pneumonia", "covid"), n_bins=10)
        normal = table["by_class"]["normal"]
        assert normal["count"][9] == 3 and normal["positives"][9] == 2  # 0.95, 0.91, 1.0 (1.0 in the last bin)
        assert normal["count"][0] == 1 and normal["count"][1] == 1
        assert normal["mean_probability"][9] == pytest.approx((0.95 + 0.91 + 1.0) / 3)
        covid = table["by_class"]["covid"]
        assert covid["count"][9] == 1 and covid["positives"][9] == 1 and covid["positives"][0] == 1
        assert sum(covid["count"]) == 5 and table["edges"][0] == 0.0 and table["edges"][-1] == 1.0

    def test_shapes_that_do_not_fit_are_refused(self):
        with pytest.raises(ValueError, match="do not fit 3 classes"):
            reliability_table(np.zeros((2, 2)), [0, 1], ("normal", "pneumonia", "covid"))


def test_calibration_line_reads_the_cards_own_bin():
    card = bundled()
    table = json.loads(BUNDLED_CARD.read_text())["validation_metrics"].get("reliability")
    if table is None:
        pytest.skip("the bundled card has no reliability table (python -m training.reliability --write)")
    row = table["by_class"]["covid"]
    count, positives = row["count"][9], row["positives"][9]
    pooled = dict(table)
    pooled.pop("by_age_group", None)  # a table written before the age groups were
    older = dataclasses.replace(card, validation_metrics={**card.validation_metrics, "reliability": pooled})
    line = calibration_line(older, "covid", 0.97)
    assert line == (f"Calibration: of the {count} validation films given a COVID-19 probability of 90–100 %, "
                    f"{positives} ({round(100 * positives / count)} %) were COVID-19.")


def test_calibration_is_the_patients_age_groups_and_both_when_the_age_is_not_known():
    """The pooled 90–100 % pneumonia bin (98 of 100) is children's: adults' pneumonia at 90–100 % was right far less
    often in validation (a reading radiologist's finding), and an adult's film must be told so."""
    card = bundled()
    groups = card.validation_metrics["reliability"]["by_age_group"]
    adult, child = (groups[g]["by_class"]["pneumonia"] for g in ("adult", "pediatric"))
    assert adult["count"][9] >= 20 and child["count"][9] >= 20
    adult_text = (f"{adult['positives'][9]} of {adult['count'][9]} adults' films "
                  f"({round(100 * adult['positives'][9] / adult['count'][9])} %) were Pneumonia")
    child_text = (f"{child['positives'][9]} of {child['count'][9]} children's films "
                  f"({round(100 * child['positives'][9] / child['count'][9])} %) were Pneumonia")
    start = "Calibration: of the validation films given a Pneumonia probability of 90–100 %, "
    assert calibration_line(card, "pneumonia", 0.99, "adult") == start + adult_text + "."
    assert calibration_line(card, "pneumonia", 0.99, "pediatric") == start + child_text + "."
    assert calibration_line(card, "pneumonia", 0.99) == (start + adult_text + "; " + child_text
                                                         + " (the patient's age is not known).")
    assert adult["positives"][9] / adult["count"][9] < child["positives"][9] / child["count"][9] - 0.1


def test_a_film_out_of_scope_gets_no_calibration_figure_but_an_uncertain_one_does():
    card = bundled()
    shown = prediction(card, (0.02, 0.01, 0.97))
    assert model_limits(card, shown, "adult", "inverted").calibration.startswith("Calibration: not stated for this film")
    assert "adults' films (97 %) were COVID-19" in model_limits(card, shown, "adult", "uncertain").calibration
    # a film that only looks like a child's (no age) may be in scope: both groups' figures, as for any unknown age
    assert "adults' films (97 %) were COVID-19" in model_limits(card, shown, "", "child-chest;uncertain").calibration


def test_reliability_for_other_weights_or_none_is_not_used():
    card = bundled()
    stale = dataclasses.replace(card, weights_sha256="0" * 64)
    assert "holds no validation reliability figures" in calibration_line(stale, "covid", 0.97)
    bare = dataclasses.replace(card, validation_metrics={})
    assert "holds no validation reliability figures" in calibration_line(bare, "normal", 0.6)


def test_known_limits_follow_the_card_figures_not_constants():
    card = bundled()
    checks = [c for c in card.test_metrics["shortcut_checks"]
              if c["want"] == "high" and c["n"] >= 5 and c["hits"] / c["n"] <= 0.5]
    text = "\n".join(known_limits(card))
    for check in checks:
        assert f"{check['hits']} of {check['n']} test films" in text
    changed = json.loads(json.dumps(card.test_metrics))
    for check in changed["shortcut_checks"]:
        if check["check"].startswith("adult pneumonia"):
            check.update(hits=4, n=31, predicted={"normal": 13, "pneumonia": 4, "covid": 14})
    # One folder of films whose diagnoses are unknown (left out: a reader cannot judge those calls, and a
    # radiologist found the sentence claimed "outside its training sources" of NIH films) and one with
    # radiologists' labels.
    changed["external_files"] = [
        {"folder": "dicom", "predicted": {"normal": 5, "pneumonia": 1, "covid": 2}, "by_label": None},
        {"folder": "dicom_rsna", "predicted": {"normal": 8, "pneumonia": 8, "covid": 0},
         "by_label": {"normal": {"n": 4, "predicted": {"normal": 4}, "correct": 4},
                      "pneumonia": {"n": 5, "predicted": {"pneumonia": 3, "normal": 2}, "correct": 3},
                      "other": {"n": 7, "predicted": {"normal": 4, "covid": 3}, "correct": None}}}]
    retrained = dataclasses.replace(card, test_metrics=changed)
    text = "\n".join(known_limits(retrained))
    assert "4 of 31 test films (13 %); 14 called COVID-19; 13 called Normal." in text
    assert ("Of 16 real DICOM films read by radiologists it was right on 4 of 4 Normal and 3 of 5 Pneumonia films; "
            "of 7 with other findings it called 4 Normal, 3 COVID-19.") in text
    assert "5 Normal, 1 Pneumonia, 2 COVID-19" not in text and "diagnoses unknown" not in text


def test_the_statement_has_the_cards_intended_use_calibration_and_limits():
    card = dataclasses.replace(bundled(), intended_use="Only for testing the test.")
    limits = model_limits(card, prediction(card, (0.05, 0.02, 0.93)))
    assert limits.intended_use == "Only for testing the test."
    lines = limits.lines()
    assert lines[0].startswith("Calibration:") and "COVID-19 probability of 90–100 %" in lines[0]
    assert all(line.startswith("Known limit: ") for line in lines[1:]) and len(lines) > 1
    assert model_limits(card).lines()[0].startswith("Known limit: ")  # no prediction, no calibration line


def test_known_limits_name_the_calls_on_other_findings_and_the_unseen_source():
    """Tester (2026-11-30): the panel and the PDF never said that the average calls many films with other
    findings pneumonia, nor how it does at a COVID-19 source it never saw."""
    card = bundled()
    changed = json.loads(json.dumps(card.test_metrics))
    changed["other_findings"] = {"n": 400, "predicted": {"normal": 199, "pneumonia": 174, "covid": 27}}
    changed["leave_one_source_out"] = {"held_out_source": "covid_cxnet", "n": 650, "accuracy": 0.9138,
                                       "with_offsets_replayed": {"accuracy": 0.8862}}
    lines = known_limits(dataclasses.replace(card, test_metrics=changed))
    assert lines[0].startswith("Only 3 classes") and lines[0].endswith(
        "Of 400 films with other findings (no pneumonia-like opacity) it called 199 Normal, 174 Pneumonia, 27 COVID-19.")
    assert ("A copy trained the same way without the covid_cxnet source found COVID-19 in 91 % of that source's 650 "
            "COVID-19 films (89 % with its operating point replayed).") in lines
    del changed["other_findings"], changed["leave_one_source_out"]["with_offsets_replayed"]
    lines = known_limits(dataclasses.replace(card, test_metrics=changed))
    assert not any("(no pneumonia-like opacity)" in line for line in lines)
    assert ("A copy trained the same way without the covid_cxnet source found COVID-19 in 91 % of that source's 650 "
            "COVID-19 films.") in lines


def test_a_normal_call_says_it_is_not_a_normal_chest():
    """A reading radiologist's finding: "Normal 97 %" on a film read as abnormal, with the calibration line
    ("98 of 100 were Normal") first and the limit that explains it last. Beside a Normal call the statement
    now says what Normal means and how many films with other findings the bundled model called Normal."""
    from cxr_engine.models.classifier import Prediction
    from cxr_engine.models.model_card import load_card
    from cxr_engine.models.model_limits import model_limits
    from cxr_engine.resources import models_dir

    card = load_card(models_dir() / "efficientnet-lite0-b1-average.json")
    counts = card.test_metrics["other_findings"]["predicted"]
    normal = Prediction(classes=("normal", "pneumonia", "covid"), probabilities=(0.969, 0.02, 0.011), model_name="x")
    first = model_limits(card, normal).lines()[0]
    assert first.startswith("Calibration: ") and first.endswith(
        f"Normal here means neither pneumonia nor COVID-19, not a normal chest: of {sum(counts.values())} films with "
        f"other findings it called {counts['normal']} Normal.")
    covid = Prediction(classes=("normal", "pneumonia", "covid"), probabilities=(0.011, 0.02, 0.969), model_name="x")
    assert "not a normal chest" not in model_limits(card, covid).lines()[0]


def test_the_heat_maps_share_in_the_lungs_is_a_known_limit_from_the_card():
    card = bundled()
    section = card.test_metrics["heatmap_in_lungs"]
    median, area = section["all"]["median"], section["mean_lung_area_share"]
    text = "\n".join(known_limits(card))
    assert (f"Heat-maps: a median {round(100 * median)} % of a map's weight lies in the lung fields, which cover "
            f"{round(100 * area)} % of the film ({section['all']['n']} test films)") in text
    bare = dataclasses.replace(card, test_metrics={k: v for k, v in card.test_metrics.items() if k != "heatmap_in_lungs"})
    assert "Heat-maps:" not in "\n".join(known_limits(bare))


def test_films_with_other_findings_are_told_by_view_from_the_card():
    """AP films with other findings were called pneumonia about twice as often as PA ones (a reading radiologist's
    sample, then all 400 ``cxr_other`` films by ``python -m training.populations --other-manifest``)."""
    card = bundled()
    section = card.test_metrics["other_findings"]
    ap, pa = section["by_view"]["AP"], section["by_view"]["PA"]
    text = "\n".join(known_limits(card))
    assert (f"Pneumonia for {ap['pneumonia']} of {sum(ap.values())} AP films (often portable films of sicker patients, "
            f"with lines and tubes) against {pa['pneumonia']} of {sum(pa.values())} PA.") in text
    assert ap["pneumonia"] / sum(ap.values()) > pa["pneumonia"] / sum(pa.values())


def test_the_adults_calls_right_line_is_the_called_classs_and_the_default_stays_pneumonias():
    """A tester read "a Pneumonia call was right 32 of 43 times" under Normal and COVID-19 calls: the caller gives the
    film's class (``called``); without it the line is a Pneumonia call's, as the PDF prints it today."""
    from cxr_engine.models.model_limits import metric_lines

    card = bundled()
    adults = card.test_metrics["by_age_group"]["adult"]
    confusion, classes = adults["confusion"], list(adults["recall"])

    def right(cls: str) -> str:
        i = classes.index(cls)
        made = sum(row[i] for row in confusion)
        name = {"normal": "Normal", "pneumonia": "Pneumonia", "covid": "COVID-19"}[cls]
        return f"In adults with a recorded age, a {name} call was right {confusion[i][i]} of {made} times."

    assert metric_lines(card.test_metrics, "adult")[-1] == right("pneumonia")  # the default: today's line
    for cls in ("normal", "covid", "pneumonia"):
        lines = metric_lines(card.test_metrics, "adult", called=cls)
        assert lines[-1] == right(cls)
        assert sum("call was right" in line for line in lines) == 1
    # no call (no film classified): no such line
    assert not any("call was right" in line for line in metric_lines(card.test_metrics, "adult", called=""))


def test_the_childrens_sensitivities_say_they_are_nearly_all_from_one_source():
    """The test split's children are nearly all one source's (Kermany): said beside their sensitivities, from the
    card's own counts, when the caller gives the card; not beside the adults'."""
    from cxr_engine.models.model_limits import metric_lines

    card = bundled()
    children = card.test_metrics["by_age_group"]["pediatric"]["n"]
    kermany = sum(card.training_data["sources"]["kermany_pediatric"]["images"]["test"].values())
    note = (f"Of the {children:,} children's test films, {kermany:,} are from one source (kermany_pediatric): the "
            f"children's figures may not hold for a child filmed elsewhere.")
    for group in ("", "pediatric"):
        lines = metric_lines(card.test_metrics, group, card=card)
        (line,) = [line for line in lines if line.startswith("Sensitivity (children): ")]
        assert line.endswith(f". {note}")
        assert sum(note in line for line in lines) == 1  # beside the children's, not the adults'
    assert not any("from one source" in line for line in metric_lines(card.test_metrics, "adult", card=card))
    assert not any("from one source" in line for line in metric_lines(card.test_metrics, ""))  # no card: as before
    # another card's counts, another note: nothing is written in
    other = dataclasses.replace(card, training_data={**card.training_data, "sources": {
        **card.training_data["sources"],
        "kermany_pediatric": {**card.training_data["sources"]["kermany_pediatric"],
                              "images": {"test": {"normal": 300, "pneumonia": 400}}}}})
    assert f"{children:,} children's test films, 700 are from one source" in " ".join(
        metric_lines(other.test_metrics, "", card=other))


def test_an_age_the_model_was_not_trained_on_gets_no_groups_sensitivities():
    """A tester's finding: a 6-year-old's Model box gave both the adults' and the 1-5-year-olds' sensitivities,
    neither of which speaks for a 6-year-old. An age outside the training ages gets a line saying there are no test
    figures for it; an unknown age still gets both groups', a training age its own group's."""
    from cxr_engine.models.model_limits import metric_lines

    card = bundled()
    for years, words in ((6, "6 years"), (17.9, "17 years"), (0.5, "under 1 year")):
        lines = metric_lines(card.test_metrics, "", card=card, age_years=years)
        assert not any(line.startswith("Sensitivity") for line in lines), lines
        assert (f"No test figures for a patient of {words}: the test split's children are 1–5 years old, its adults "
                f"18 and older.") in lines
        assert lines[0].startswith("Test set: accuracy")  # the whole test split's figure stays
    unknown = metric_lines(card.test_metrics, "", card=card, age_years=None)
    assert sum(line.startswith("Sensitivity (") for line in unknown) == 2
    assert metric_lines(card.test_metrics, "adult", card=card, age_years=40) == metric_lines(
        card.test_metrics, "adult", card=card)


def test_the_pdf_of_a_six_year_old_gives_no_groups_sensitivities(tmp_path, shared_data):
    """The RSNA film 00aecb01… is of a 6-year-old (Patient's Age 06Y): its PDF's Model box says there are no test
    figures for that age instead of the adults' and children's sensitivities."""
    film = shared_data / "dicom_rsna" / "00aecb01-a116-45a2-956c-08d2fa55433f.dcm"
    if not film.exists():
        pytest.skip(f"{film} not found")
    from cxr_engine.outputs.report import ReportPage, build_report_pdf
    from cxr_engine.pixels.rendering import render
    from cxr_engine.reading.read import read_image

    image = read_image(film)
    card = bundled()
    page = ReportPage.for_image(image, render(image), prediction=prediction(card, (0.1, 0.8, 0.1)))
    pdf = tmp_path / "six.pdf"
    pdf.write_bytes(build_report_pdf([page], model_card=card, deidentify=False))
    from pypdf import PdfReader

    text = " ".join(" ".join(page.extract_text() for page in PdfReader(str(pdf)).pages).split())
    assert "No test figures for a patient of 6 years" in text
    assert "Sensitivity (children)" not in text and "Sensitivity (adults" not in text
