"""An experiment for issue 17: the other-findings head on BOTH bundled networks' pooled features.

``training.scope_heads`` fits the other-findings head on one network's pooled features; the default averaged
model computes both networks' anyway, so this measures whether their concatenation (alone, with the average's
probabilities and call, weighed up, and as an MLP) can reach the issue's target (>= 50 % of cxr_other flagged
while <= 5 % of in-scope test films are) under the project's gate (<= 15 % of the validation RSNA adult pneumonia
warned; ``scope_heads.OTHER_FINDINGS_MAX_RSNA_PNEUMONIA``). Every choice (k, C or alpha, threshold) is made on
validation only (the in-scope validation split and cxr_other's validation third); the test split and the
held-out third are measured for the chosen settings only. Nothing is written into a card.

    python -m training.scope_heads --card resources/models/efficientnet-lite0.json --manifest \
        training/work/curated_sqrt/split_manifest.csv --other ../shared/data/cxr_other/manifest.csv \
        --report /tmp/scope_lite0 --threads 1        # fills the feature cache (and the same for efficientnet-b1)
    python -m training.scope_heads_pooled --out training/reports/scope_heads_pooled/linear.json
    python -m training.scope_heads_pooled --mlp --out training/reports/scope_heads_pooled/mlp.json
    python -m training.scope_heads_pooled --bigk --out training/reports/scope_heads_pooled/bigk.json
    python -m training.scope_heads_pooled --table training/reports/scope_heads_pooled/{linear,mlp,bigk}.json \
        > training/reports/scope_heads_pooled/table.md

"Scope_heads rule" picks the setting with the largest cxr_other validation third flagged minus validation RSNA
pneumonia warned (``training.scope_heads``' rule); "gate-aware" the largest cxr_other validation third among
the settings that warn on at most 15 % of the validation RSNA pneumonia.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cxr_engine.models.ensemble import ensemble_logits, probabilities
from cxr_engine.models.ensemble_card import EnsembleCard
from cxr_engine.models.model_card import ModelCard
from . import scope_features
from .scope_heads import (NEAR_SOURCES, OTHER_FINDINGS_MAX_RSNA_PNEUMONIA, STRENGTHS_C,
                                  WEIGHTS_K, Data, age, auroc, fit_head, rate)

CARDS = {"lite0": Path("resources/models/efficientnet-lite0.json"), "b1": Path("resources/models/efficientnet-b1.json")}
AVERAGE = Path("resources/models/efficientnet-lite0-b1-average.json")
FLAG_RATE = 0.05
GATE = OTHER_FINDINGS_MAX_RSNA_PNEUMONIA
SPLITS = ("train", "val", "test", "other")


def load_all(manifest: Path, other: Path, features: Path):
    data = {}
    for name, card_path in CARDS.items():
        card = ModelCard.load(card_path)
        data[name] = Data(scope_features.features_folder(features, card, manifest), manifest, other, seed=0)
    for s in SPLITS:
        if not (data["lite0"].arrays[s]["id"] == data["b1"].arrays[s]["id"]).all():
            raise ValueError(f"the two networks' cached {s} features are not of the same films")
    avg = EnsembleCard.load(AVERAGE)
    names = [m["card"] for m in json.loads(AVERAGE.read_text())["members"]]
    if names != ["efficientnet-lite0", "efficientnet-b1"]:
        raise ValueError(f"{AVERAGE} averages {names}, not the two cards whose features are read")
    extra = {}
    for s in SPLITS:
        z = ensemble_logits([data["lite0"].arrays[s]["logits"], data["b1"].arrays[s]["logits"]],
                            avg.member_weights, avg.logit_offsets)
        p = probabilities(z, avg.temperature)
        call = np.eye(p.shape[1])[p.argmax(axis=1)]
        extra[s] = np.hstack([p, call]).astype(np.float32)
    return data, extra


def feature_sets(data, extra):
    base = data["lite0"]
    sets = {
        "lite0": {s: data["lite0"].x(s) for s in SPLITS},
        "b1": {s: data["b1"].x(s) for s in SPLITS},
        "concat": {s: np.hstack([data["lite0"].x(s), data["b1"].x(s)]) for s in SPLITS},
        "concat+probs/call": {s: np.hstack([data["lite0"].x(s), data["b1"].x(s), extra[s]]) for s in SPLITS},
        # the six extra inputs weighed like a whole network (each repeated so their L2 share is not negligible)
        "concat+probs/call x200": {s: np.hstack([data["lite0"].x(s), data["b1"].x(s), np.repeat(extra[s], 200, axis=1)])
                                   for s in SPLITS},
    }
    return base, sets


class LR:
    grid = STRENGTHS_C
    pname = "C"

    def fit(self, x, y, w, c):
        head = fit_head(x, y, w, c)
        return head.logits


class MLP:
    grid = (1.0, 10.0, 30.0)
    pname = "alpha"

    def fit(self, x, y, w, alpha):
        from sklearn.decomposition import PCA
        from sklearn.neural_network import MLPClassifier

        w = w.astype(np.float64).copy()
        w[y == 1] *= w[y == 0].sum() / w[y == 1].sum()
        w *= len(w) / w.sum()
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        pca = PCA(n_components=128, random_state=0).fit((x - mean) / scale)
        model = MLPClassifier(hidden_layer_sizes=(64,), alpha=alpha, max_iter=400, random_state=0)
        model.fit(pca.transform((x - mean) / scale), y, sample_weight=w)

        def score(z):
            p = model.predict_proba(pca.transform((np.asarray(z, np.float64) - mean) / scale))[:, 1]
            p = np.clip(p, 1e-12, 1 - 1e-12)
            return np.log(p) - np.log1p(-p)
        return score


def run_variant(base: Data, xs: dict, learner, ks=WEIGHTS_K):
    near = np.isin(base.column("train", lambda r: r["source"]), NEAR_SOURCES)
    fit = base.other_third == 0
    x = np.vstack([xs["train"], xs["other"][fit]])
    y = np.r_[np.zeros(len(near)), np.ones(fit.sum())]
    val_rsna_pn = base.column("val", lambda r: r["source"] == "rsna_pneumonia" and r["label"] == "pneumonia")
    tried = []
    for k in ks:
        for c in learner.grid:
            score = learner.fit(x, y, np.r_[np.where(near, k, 1.0), np.ones(fit.sum())], c)
            val = score(xs["val"])
            t = float(np.quantile(val, 1 - FLAG_RATE))
            other = score(xs["other"])
            row = {"k": k, learner.pname: c, "threshold": t,
                   "val_flag": float((val > t).mean()),
                   "other_val": float((other[base.other_third == 1] > t).mean()),
                   "rsna_pn_val": float((val[val_rsna_pn] > t).mean()),
                   "_score": score}
            tried.append(row)
            print(f"  k={k} {learner.pname}={c}: other val {row['other_val']:.3f}  RSNA pn val {row['rsna_pn_val']:.3f}",
                  flush=True)
    return tried


def choose(tried, gate_aware: bool):
    if gate_aware:
        ok = [t for t in tried if t["rsna_pn_val"] <= GATE]
        if not ok:
            return None
        return max(ok, key=lambda t: (t["other_val"], -t["rsna_pn_val"]))
    return max(tried, key=lambda t: t["other_val"] - t["rsna_pn_val"])  # scope_heads' rule (first best kept)


def measure(base: Data, xs: dict, chosen) -> dict:
    score, t = chosen["_score"], chosen["threshold"]
    test = score(xs["test"])
    other = score(xs["other"])
    held = other[base.other_third == 2]
    rows = base.rows["test"]
    flags = test > t
    rsna_pn = np.array([r["source"] == "rsna_pneumonia" and r["label"] == "pneumonia" for r in rows])
    nih = np.array([r["source"] == "nih_cxr14" for r in rows])
    adult_normal = np.array([r["label"] == "normal" and age(r) != "pediatric" for r in rows])
    nih_adult_normal = nih & np.array([age(r) == "adult" for r in rows])
    return {"test_flag": rate(flags), "test_rsna_pn": rate(flags[rsna_pn]), "test_nih_normal": rate(flags[nih]),
            "test_nih_adult_normal": rate(flags[nih_adult_normal]),
            "test_adult_normal_all": rate(flags[adult_normal]), "heldout": rate(held > t),
            "auroc": auroc(test, held)}


def table(paths: list[Path]) -> str:
    """A markdown table of the chosen settings in the JSON files ``main`` wrote (rates in %)."""
    def cell(r, key):
        return f"{100 * r[key]['rate']:.1f} ({r[key]['flagged']}/{r[key]['films']})"

    lines = ["| run: variant | chosen | val cxr_other third | val RSNA pneumonia warned | val in-scope | test in-scope | "
             "test RSNA pneumonia | test adult normals (NIH / all) | held-out cxr_other | AUROC | meets all three |",
             "|" + "---|" * 11]
    for path in paths:
        for r in json.loads(Path(path).read_text(encoding="utf-8")):
            if "tried" in r:
                continue
            if "none" in r:
                lines.append(f"| {Path(path).stem}: {r['variant']} | none | no setting warns on <= 15 % of the validation RSNA pneumonia"
                             + " |" * 9)
                continue
            name, value = ("C", r["C"]) if "C" in r else ("alpha", r["alpha"])
            met = r["heldout"]["rate"] >= 0.5 and r["test_flag"]["rate"] <= 0.05 and r["rsna_pn_val"] <= GATE
            lines.append(f"| {Path(path).stem}: {r['variant']} | k={r['k']}, {name}={value} | {100 * r['other_val']:.1f} | "
                         f"{100 * r['rsna_pn_val']:.1f} | {100 * r['val_flag']:.1f} | {cell(r, 'test_flag')} | "
                         f"{cell(r, 'test_rsna_pn')} | {cell(r, 'test_nih_adult_normal')} / "
                         f"{cell(r, 'test_adult_normal_all')} | {cell(r, 'heldout')} | {r['auroc']:.3f} | "
                         f"{'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.scope_heads_pooled", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated_sqrt/split_manifest.csv"))
    parser.add_argument("--other", type=Path, default=Path("../shared/data/cxr_other/manifest.csv"))
    parser.add_argument("--features", type=Path, default=Path("training/work/scope_features"),
                        help="training.scope_features' cache (filled by training.scope_heads for each card)")
    parser.add_argument("--mlp", action="store_true", help="an MLP (PCA 128 -> 64 units) instead of the linear head")
    parser.add_argument("--bigk", action="store_true", help="the linear head with k in (10, 20, 50, 100)")
    parser.add_argument("--out", type=Path, help="JSON file for every variant's figures")
    parser.add_argument("--table", type=Path, nargs="+", help="print the markdown table of these JSON files instead")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table), end="")
        return 0
    if not args.out:
        parser.error("--out is needed (or --table)")
    data, extra = load_all(args.manifest, args.other, args.features)
    base, sets = feature_sets(data, extra)
    plan = [(name, LR()) for name in sets]
    if args.mlp:
        plan = [("concat", MLP()), ("concat+probs/call", MLP())]
    ks = WEIGHTS_K
    if args.bigk:
        plan = [("lite0", LR()), ("b1", LR()), ("concat", LR()), ("concat+probs/call x200", LR())]
        ks = (10, 20, 50, 100)
    results = []
    for name, learner in plan:
        print(f"== {name} ({type(learner).__name__}) k in {ks}", flush=True)
        tried = run_variant(base, sets[name], learner, ks)
        for gate_aware in (False, True):
            chosen = choose(tried, gate_aware)
            label = f"{name} / {type(learner).__name__} / {'gate-aware' if gate_aware else 'scope_heads rule'}"
            if chosen is None:
                results.append({"variant": label, "none": "no setting passes the gate on validation"})
                print(label, "no setting passes the gate", flush=True)
                continue
            m = measure(base, sets[name], chosen)
            r = {"variant": label, **{k: v for k, v in chosen.items() if not k.startswith("_")}, **m}
            results.append(r)
            print(label, json.dumps({k: (v["rate"] if isinstance(v, dict) else v) for k, v in r.items()}), flush=True)
        results.append({"variant": f"{name} / {type(learner).__name__} / grid",
                        "tried": [{k: v for k, v in t.items() if not k.startswith("_")} for t in tried]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
