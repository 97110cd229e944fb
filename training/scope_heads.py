"""Fit, threshold and measure the out-of-scope heads on a classifier's pooled features.

    python -m training.scope_heads --card resources/models/efficientnet-lite0.json \
        --manifest training/work/curated/split_manifest.csv \
        --other ../shared/data/cxr_other/manifest.csv --report training/reports/scope_heads_lite0 --write-card

Features come from ``training/work/scope_features/<card name>-<weights sha256>-<manifest sha256>/``
(``training.scope_features.features_folder``; computed
there first, ``--threads`` each, when missing). Two heads (``cxr_engine.models.scope_heads``):

- ``other-findings``: training films (label 0) against the *fit* third of ``cxr_other`` (label 1; the
  400 films are split by patient into fit / validation / held-out thirds with ``--seed``). NIH and RSNA
  training films, the in-scope films of cxr_other's own source, weigh ``k`` times the others, so that
  the head has to tell the other findings from those films, not the source. ``k`` and the L2 strength
  ``C`` are chosen on validation (cxr_other's validation third flagged minus the validation RSNA
  pneumonia films flagged, at the threshold); the threshold flags ``--val-flag-rate`` of the in-scope
  validation films.
- ``child-chest``: pediatric against adult training films (NIH and RSNA ones weighing ``k`` = 5 times);
  ``C`` chosen on the validation NIH and RSNA children; the threshold flags ``--val-flag-rate`` of the
  validation adults. Measured on the test split's NIH and RSNA children and adults and on cxr_other's
  children (never used by this head), i.e. children from other sources than Kermany's hospital.

Reported on the test split and cxr_other's held-out third only: ``summary.json``, ``report.md`` and
``curve.png`` in ``--report``. With ``--write-card`` the parameters go to ``<card>.scope-heads`` beside
the card and the card's ``scope_heads`` entry names them with their sha256. The other-findings head is
written only when it passes :data:`OTHER_FINDINGS_MAX_RSNA_PNEUMONIA` on validation (it is measured and
reported either way).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.scope_heads import CARD_KEY, CHILD, OTHER_FINDINGS, PARAMS_SUFFIX, Head, ScopeHeads
from cxr_engine.models.scope_score import msp_score

from . import scope_features
from .script_logging import script_logging

logger = logging.getLogger("training.scope_heads")

NEAR_SOURCES = ("nih_cxr14", "rsna_pneumonia")
WEIGHTS_K = (1, 3, 5, 10)
STRENGTHS_C = (0.001, 0.003, 0.01)
CHILD_K = 5
CURVE_QUANTILES = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
#: The other-findings head ships only when, at its threshold, it warns on at most this share of the
#: validation split's radiologist-read adult pneumonia (RSNA, cxr_other's own hospital). Its message says
#: the film shows findings outside the three classes and that the probabilities are not reliable: on
#: adult pneumonia, the film the model most needs to be trusted on, that warning must be the exception.
OTHER_FINDINGS_MAX_RSNA_PNEUMONIA = 0.15


def fit_head(x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float) -> Head:
    """L2 logistic regression on standardised ``x`` (sample ``weights``; the positives reweighted to the
    negatives' total), as a :class:`Head` with no threshold yet."""
    from sklearn.linear_model import LogisticRegression

    w = weights.astype(np.float64).copy()
    w[y == 1] *= w[y == 0].sum() / w[y == 1].sum()
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y, sample_weight=w)
    return Head(mean.astype(np.float32), scale.astype(np.float32), model.coef_[0].astype(np.float32),
                float(model.intercept_[0]), float("inf"))


def with_threshold(head: Head, threshold: float) -> Head:
    return Head(head.mean, head.scale, head.weights, head.bias, float(threshold))


def thirds(patient_ids: list[str], seed: int) -> np.ndarray:
    """0 (fit), 1 (validation) or 2 (held out) per film, by patient, in a fixed random order."""
    patients = sorted(set(patient_ids))
    order = np.random.default_rng(seed).permutation(len(patients))
    third = {patients[j]: k * 3 // len(patients) for k, j in enumerate(order)}
    return np.array([third[p] for p in patient_ids])


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([inside, outside]))
    n_in, n_out = len(inside), len(outside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of k flagged out of n."""
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]


def rate(flags: np.ndarray) -> dict:
    k, n = int(flags.sum()), int(flags.size)
    return {"flagged": k, "films": n, "rate": k / n if n else float("nan"), "ci95": wilson(k, n)}


def groups(rows: list[dict], flags: np.ndarray, key) -> dict:
    by = defaultdict(list)
    for row, flag in zip(rows, flags):
        by[key(row)].append(flag)
    return {name: rate(np.array(v)) for name, v in sorted(by.items())}


def age(row: dict) -> str:
    return row["age_group"].split("(")[0]


class Data:
    """The cached features and manifest rows of every split."""

    def __init__(self, folder: Path, manifest: Path, other: Path, seed: int):
        rows = {r["id"]: r for r in scope_features.read_manifest(manifest)}
        other_rows = {r["id"]: r for r in scope_features.read_manifest(other)}
        self.arrays, self.rows = {}, {}
        for split in ("train", "val", "test", "other"):
            arrays = scope_features.load(folder, split)
            self.arrays[split] = arrays
            self.rows[split] = [(other_rows if split == "other" else rows)[i] for i in arrays["id"]]
        self.other_third = thirds([r["patient_id"] for r in self.rows["other"]], seed)

    def x(self, split: str) -> np.ndarray:
        return self.arrays[split]["pooled"]

    def column(self, split: str, key) -> np.ndarray:
        return np.array([key(r) for r in self.rows[split]])


def fit_other_findings(data: Data, flag_rate: float) -> tuple[Head, dict]:
    near = np.isin(data.column("train", lambda r: r["source"]), NEAR_SOURCES)
    fit = data.other_third == 0
    x = np.vstack([data.x("train"), data.x("other")[fit]])
    y = np.r_[np.zeros(len(near)), np.ones(fit.sum())]
    val_rsna_pneumonia = data.column("val", lambda r: r["source"] == "rsna_pneumonia" and r["label"] == "pneumonia")
    tried, best = [], None
    for k in WEIGHTS_K:
        for c in STRENGTHS_C:
            head = fit_head(x, y, np.r_[np.where(near, k, 1.0), np.ones(fit.sum())], c)
            val = head.logits(data.x("val"))
            threshold = float(np.quantile(val, 1 - flag_rate))
            other_val = float((head.logits(data.x("other")[data.other_third == 1]) > threshold).mean())
            rsna_val = float((val[val_rsna_pneumonia] > threshold).mean())
            tried.append({"k": k, "C": c, "other_val_flagged": other_val, "rsna_pneumonia_val_flagged": rsna_val,
                          "score": other_val - rsna_val})
            logger.info("other-findings k=%s C=%s: cxr_other val %.3f, RSNA pneumonia val %.3f", k, c, other_val, rsna_val)
            if best is None or tried[-1]["score"] > best[0]:
                best = (tried[-1]["score"], with_threshold(head, threshold), k, c)
    chosen = next(t for t in tried if (t["k"], t["C"]) == (best[2], best[3]))
    shipped = chosen["rsna_pneumonia_val_flagged"] <= OTHER_FINDINGS_MAX_RSNA_PNEUMONIA
    why = (f"validation RSNA adult pneumonia warned {chosen['rsna_pneumonia_val_flagged']:.1%} "
           f"{'<=' if shipped else '>'} {OTHER_FINDINGS_MAX_RSNA_PNEUMONIA:.0%} (cxr_other validation third "
           f"{chosen['other_val_flagged']:.1%})")
    return best[1], {"chosen": {"k": best[2], "C": best[3]}, "tried": tried, "shipped": shipped, "why": why}


def fit_child(data: Data, flag_rate: float) -> tuple[Head, dict]:
    ages = data.column("train", age)
    keep = np.isin(ages, ("pediatric", "adult"))
    near = np.isin(data.column("train", lambda r: r["source"]), NEAR_SOURCES)
    x, y = data.x("train")[keep], (ages[keep] == "pediatric").astype(float)
    val_ages = data.column("val", age)
    val_near = np.isin(data.column("val", lambda r: r["source"]), NEAR_SOURCES)
    tried, best = [], None
    for c in STRENGTHS_C:
        head = fit_head(x, y, np.where(near[keep], CHILD_K, 1.0), c)
        val = head.logits(data.x("val"))
        threshold = float(np.quantile(val[val_ages == "adult"], 1 - flag_rate))
        children = float((val[(val_ages == "pediatric") & val_near] > threshold).mean())
        tried.append({"C": c, "val_children_other_sources_flagged": children})
        logger.info("child-chest C=%s: NIH/RSNA validation children flagged %.3f", c, children)
        if best is None or children > best[0]:
            best = (children, with_threshold(head, threshold), c)
    return best[1], {"chosen": {"k": CHILD_K, "C": best[2]}, "tried": tried}


def measure_other_findings(data: Data, head: Head, card: ModelCard) -> dict:
    held = data.other_third == 2
    scores = {s: head.logits(data.x(s)) for s in ("val", "test", "other")}
    t = head.threshold
    test_rows, test_flags = data.rows["test"], scores["test"] > t
    other_held = scores["other"][held]
    curve = []
    for q in CURVE_QUANTILES:
        tq = float(np.quantile(scores["val"], q))
        curve.append({"val_quantile": q, "threshold": tq, "test_flagged": float((scores["test"] > tq).mean()),
                      "other_heldout_flagged": float((other_held > tq).mean())})
    logits = data.arrays["other"]["logits"][held]
    calls = np.array(card.classes)[logits.argmax(axis=1)]
    flagged = other_held > t
    msp = {s: msp_score(card, data.arrays[s]["logits"]) for s in ("val", "test", "other")}
    msp_t = float(np.quantile(msp["val"], 1 - float((scores["val"] > t).mean())))
    msp_curve = [{"val_quantile": q, "test_flagged": float((msp["test"] > np.quantile(msp["val"], q)).mean()),
                  "other_heldout_flagged": float((msp["other"][held] > np.quantile(msp["val"], q)).mean())}
                 for q in CURVE_QUANTILES]
    return {
        "threshold": t,
        "val_flagged": rate(scores["val"] > t),
        "other_val_third": rate(scores["other"][data.other_third == 1] > t),
        "other_heldout_third": rate(flagged),
        "test_flagged": rate(test_flags),
        "test_by_source": groups(test_rows, test_flags, lambda r: r["source"]),
        "test_by_class": groups(test_rows, test_flags, lambda r: f"{r['source']} / {r['label']} / {age(r)}"),
        "test_rsna_pneumonia": rate(test_flags[np.array([r["source"] == "rsna_pneumonia" and r["label"] == "pneumonia"
                                                          for r in test_rows])]),
        "test_nih_normal": rate(test_flags[np.array([r["source"] == "nih_cxr14" for r in test_rows])]),
        "test_adult_pneumonia": rate(test_flags[np.array([r["label"] == "pneumonia" and age(r) != "pediatric"
                                                           for r in test_rows])]),
        "auroc_test_vs_other_heldout": auroc(scores["test"], other_held),
        "curve": curve,
        "other_heldout_calls_flagged": dict(Counter(calls[flagged].tolist())),
        "other_heldout_calls_unflagged": dict(Counter(calls[~flagged].tolist())),
        "msp_baseline_same_val_rate": {"threshold": msp_t, "test_flagged": float((msp["test"] > msp_t).mean()),
                                       "other_heldout_flagged": float((msp["other"][held] > msp_t).mean()),
                                       "auroc_test_vs_other_heldout": auroc(msp["test"], msp["other"][held]),
                                       "curve": msp_curve},
    }


def measure_child(data: Data, head: Head) -> dict:
    out = {"threshold": head.threshold}
    for split in ("val", "test"):
        rows, flags = data.rows[split], head.logits(data.x(split)) > head.threshold
        near = np.array([r["source"] in NEAR_SOURCES for r in rows])
        ages = np.array([age(r) for r in rows])
        out[split] = {
            "children_nih_rsna": rate(flags[near & (ages == "pediatric")]),
            "adults_nih_rsna": rate(flags[near & (ages == "adult")]),
            "adults_all": rate(flags[np.isin(ages, ("adult", "unknown"))]),
            "kermany_children": rate(flags[np.array([r["source"] == "kermany_pediatric" for r in rows])]),
            "by_class": groups(rows, flags, lambda r: f"{r['source']} / {r['label']} / {age(r)}"),
        }
    other_flags = head.logits(data.x("other")) > head.threshold
    other_ages = data.column("other", age)
    out["cxr_other_children"] = rate(other_flags[other_ages == "pediatric"])
    out["cxr_other_adults"] = rate(other_flags[other_ages == "adult"])
    return out


def plot_curve(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    for name, curve, style in (("other-findings head", result["curve"], "o-"),
                               ("1 − max probability (MSP)", result["msp_baseline_same_val_rate"]["curve"], "s--")):
        ax.plot([100 * p["test_flagged"] for p in curve], [100 * p["other_heldout_flagged"] for p in curve], style,
                label=name, markersize=3)
    ax.axvline(5, color="grey", lw=0.8)
    ax.axhline(50, color="grey", lw=0.8)
    ax.plot([100 * result["test_flagged"]["rate"]], [100 * result["other_heldout_third"]["rate"]], "r*", markersize=10,
            label="chosen threshold")
    ax.set_xlabel("in-scope test films flagged (%)")
    ax.set_ylabel("cxr_other held-out third flagged (%)")
    ax.set_xlim(0, 55)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Out-of-scope: other findings (thresholds from validation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pct(r: dict) -> str:
    return f"{100 * r['rate']:.1f} % ({r['flagged']}/{r['films']}; 95 % CI {100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f} %)"


def write_report(path: Path, summary: dict) -> None:
    o, c = summary["other_findings"], summary["child_chest"]
    lines = [
        f"# Out-of-scope heads: {summary['card_name']}", "",
        f"Command: `{summary['command']}`", "",
        "## other-findings (cxr_other: RSNA 'No Lung Opacity / Not Normal')", "",
        f"Chosen on validation: k = {o['selection']['chosen']['k']} (NIH/RSNA training films' weight), "
        f"C = {o['selection']['chosen']['C']}; threshold flags {_pct(o['val_flagged'])} of validation films.", "",
        f"**{'Shipped' if o['selection']['shipped'] else 'Not shipped'}** in the card's parameters: "
        f"{o['selection']['why']} (the gate: at most {OTHER_FINDINGS_MAX_RSNA_PNEUMONIA:.0%} of the validation "
        "split's radiologist-read adult pneumonia warned).", "",
        f"- cxr_other held-out third flagged: **{_pct(o['other_heldout_third'])}**",
        f"- in-scope test films flagged: **{_pct(o['test_flagged'])}**",
        f"- test RSNA pneumonia (adult opacity) flagged: {_pct(o['test_rsna_pneumonia'])}",
        f"- test NIH normals flagged: {_pct(o['test_nih_normal'])}",
        f"- test adult pneumonia (all sources) flagged: {_pct(o['test_adult_pneumonia'])}",
        f"- AUROC test vs cxr_other held-out: {o['auroc_test_vs_other_heldout']:.3f} "
        f"(MSP: {o['msp_baseline_same_val_rate']['auroc_test_vs_other_heldout']:.3f})",
        f"- MSP at the same validation flag rate: test {100 * o['msp_baseline_same_val_rate']['test_flagged']:.1f} %, "
        f"cxr_other held-out {100 * o['msp_baseline_same_val_rate']['other_heldout_flagged']:.1f} %",
        f"- classifier's calls on held-out cxr_other, flagged: {o['other_heldout_calls_flagged']}; "
        f"unflagged: {o['other_heldout_calls_unflagged']}", "",
        "Test flag rate per source / class / age group:", "", "| group | flagged |", "| --- | --- |",
        *[f"| {k} | {_pct(v)} |" for k, v in o["test_by_class"].items()], "",
        "Curve (threshold at validation quantile q): ![curve](curve.png)", "",
        "| q | test flagged | cxr_other held-out flagged |", "| --- | --- | --- |",
        *[f"| {p['val_quantile']} | {100 * p['test_flagged']:.1f} % | {100 * p['other_heldout_flagged']:.1f} % |"
          for p in o["curve"]], "",
        "## child-chest (only when the header gives no age)", "",
        f"C = {c['selection']['chosen']['C']}; threshold flags 5 % of validation adults.", "",
        f"- test NIH/RSNA children flagged: **{_pct(c['test']['children_nih_rsna'])}**; "
        f"validation: {_pct(c['val']['children_nih_rsna'])}",
        f"- cxr_other children (never used by this head): **{_pct(c['cxr_other_children'])}**",
        f"- test NIH/RSNA adults flagged: {_pct(c['test']['adults_nih_rsna'])}; cxr_other adults: "
        f"{_pct(c['cxr_other_adults'])}; all test adults: {_pct(c['test']['adults_all'])}",
        f"- test Kermany children (1–5 years, one hospital) flagged: {_pct(c['test']['kermany_children'])}", "",
        "| test group | flagged |", "| --- | --- |",
        *[f"| {k} | {_pct(v)} |" for k, v in c["test"]["by_class"].items()], "",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def record(card_path: Path, heads: ScopeHeads, summary: dict) -> Path:
    """Write the parameters beside the card and name them, with their sha256, in the card's JSON."""
    from cxr_engine.outputs.atomic import write_text_atomic

    from .card_keys import set_card_keys

    params = card_path.with_name(card_path.stem + PARAMS_SUFFIX)
    text = heads.to_json()
    write_text_atomic(params, text)
    o, c = summary["other_findings"], summary["child_chest"]
    entry = {
        "file": params.name, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "features": int(next(iter(heads.heads.values())).mean.shape[0]),
        "other_findings": {"shipped": o["selection"]["shipped"], "why": o["selection"]["why"],
                           "cxr_other_heldout_flagged": o["other_heldout_third"]["rate"],
                           "test_flagged": o["test_flagged"]["rate"],
                           "test_rsna_pneumonia_flagged": o["test_rsna_pneumonia"]["rate"],
                           "test_nih_normal_flagged": o["test_nih_normal"]["rate"]},
        "child_chest": {"test_nih_rsna_children_flagged": c["test"]["children_nih_rsna"]["rate"],
                        "cxr_other_children_flagged": c["cxr_other_children"]["rate"],
                        "test_nih_rsna_adults_flagged": c["test"]["adults_nih_rsna"]["rate"]},
        "created_by_command": summary["command"],
    }
    set_card_keys(card_path, {CARD_KEY: entry})
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    scope_features.add_input_arguments(parser)
    parser.add_argument("--features", type=Path, default=Path("training/work/scope_features"))
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--val-flag-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write-card", action="store_true")
    args = parser.parse_args(argv)
    args.report.mkdir(parents=True, exist_ok=True)
    command = (f"python -m training.scope_heads --card {args.card} --manifest {args.manifest} --other {args.other} "
               f"--report {args.report}" + (" --write-card" if args.write_card else ""))
    with script_logging(args.report / "scope_heads.log"):
        started = time.time()
        card = ModelCard.load(args.card)
        folder = scope_features.features_folder(args.features, card, args.manifest)
        if not all((folder / f"{s}.npz").exists() for s in ("train", "val", "test", "other")):
            scope_features.main(["--card", str(args.card), "--manifest", str(args.manifest), "--other", str(args.other),
                                 "--out", str(args.features), "--threads", str(args.threads)])
        data = Data(folder, args.manifest, args.other, args.seed)
        other_head, other_selection = fit_other_findings(data, args.val_flag_rate)
        child_head, child_selection = fit_child(data, args.val_flag_rate)
        summary = {"card": str(args.card), "card_name": card.name, "command": command, "seed": args.seed,
                   "films": {s: len(r) for s, r in data.rows.items()},
                   "cxr_other_thirds": {str(k): int((data.other_third == k).sum()) for k in range(3)},
                   "other_findings": {"selection": other_selection, **measure_other_findings(data, other_head, card)},
                   "child_chest": {"selection": child_selection, **measure_child(data, child_head)}}
        (args.report / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        write_report(args.report / "report.md", summary)
        plot_curve(summary["other_findings"], args.report / "curve.png")
        o = summary["other_findings"]
        logger.info("other-findings: cxr_other held-out %.3f, test %.3f, RSNA pneumonia %.3f, NIH normal %.3f",
                    o["other_heldout_third"]["rate"], o["test_flagged"]["rate"], o["test_rsna_pneumonia"]["rate"],
                    o["test_nih_normal"]["rate"])
        logger.info("other-findings %s: %s", "shipped" if other_selection["shipped"] else "NOT shipped",
                    other_selection["why"])
        if args.write_card:
            shipped = {OTHER_FINDINGS: other_head} if other_selection["shipped"] else {}
            params = record(args.card, ScopeHeads({**shipped, CHILD: child_head}), summary)
            logger.info("wrote %s and the card's %s entry", params, CARD_KEY)
        logger.info("done in %.0f s", time.time() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
