"""The evaluation report's shift and other-findings sections: heading, not-run line, table columns."""
from training.evaluate import md_table
from training.framing_shift import framing_lines
from training.populations import other_lines
from training.processing_shift import shift_lines
from cxr_engine.models.model_card import CLASSES


def _shifts() -> dict:
    row = {"description": "blur", "accuracy": 0.8, "accuracy_drop": 0.1, "changed": 0.2, "macro_f1": 0.7,
           "recall": {c: 0.5 for c in CLASSES}, "predicted": {c: i for i, c in enumerate(CLASSES)}}
    return {"margin": 0.05, "plain_accuracy": 0.9, "shifts": {"blur": row}}


def test_a_section_not_run_says_so_under_its_heading():
    assert framing_lines(None, md_table) == ["## Framing-shift test", "", "Not run (`--no-shift-test`).", ""]
    assert shift_lines({}, md_table)[:3] == ["## Processing-shift test", "", "Not run (`--no-shift-test`)."]
    assert other_lines(None, md_table)[2] == "Not run (give `--other-manifest`)."


def test_shift_tables_put_each_measure_in_its_column():
    recalls = " | ".join(f"recall {c}" for c in CLASSES)
    processing = shift_lines(_shifts(), md_table)
    assert f"| shift | what | accuracy | drop | macro-F1 | {recalls} | predictions changed | predicted n/p/c |" in processing
    assert "| blur | blur | 0.800 | 0.100 | 0.700 | 0.500 | 0.500 | 0.500 | 0.200 | 0/1/2 |" in processing
    framing = framing_lines(_shifts(), md_table)
    assert f"| shift | what | accuracy | drop | calls changed | {recalls} | predicted n/p/c |" in framing
    assert "| blur | blur | 0.800 | 0.100 | 0.200 | 0.500 | 0.500 | 0.500 | 0/1/2 |" in framing
