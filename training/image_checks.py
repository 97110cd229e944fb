"""Fit, threshold and measure the image-check head (``cxr_engine.models.image_checks``); write its card.

    python -m training.image_checks --manifest training/work/curated/split_manifest.csv \
        --out resources/models/image-checks.json --report training/reports/image_checks

Training examples: every training-split film upright (with mild framing, rotation, gamma, noise,
blur and mirror changes, as films from other hospitals differ) and once more turned 90°/180°/270°
clockwise, inverted or both; 40 % of them also cropped (to one quadrant, or 15–40 % of the area);
the non-chest images of the training families (``training.non_chest``) cropped, turned, mirrored
and sometimes inverted. The threshold on the ``upright`` probability is chosen on the untouched
validation films only (the quantile that flags ``--val-flag-rate`` of them). The check set, reported
and never used for choices: every test-split film untouched, inverted, turned 90°, 180° and 270°,
and cropped to one quadrant (a quarter of its area); the non-chest test families, each image as it
is and turned 90°. Run again for new data: the head does not read any classifier's features.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from cxr_engine.models.image_checks import (CHECK_CLASSES, CROPPED, FEATURE_VERSION, NOT_CHEST, UPRIGHT,
                                     ImageCheckCard, ImageChecker, Mlp, features, thumbnail)

from .script_logging import script_logging

logger = logging.getLogger("training.image_checks")

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


# --------------------------------------------------------------------------- transforms

def turned(image: np.ndarray, degrees_clockwise: int) -> np.ndarray:
    """``image`` turned clockwise by a multiple of 90°."""
    return np.ascontiguousarray(np.rot90(image, k=-(degrees_clockwise // 90)))


def inverted(image: np.ndarray) -> np.ndarray:
    return 255 - image


def as_check_class(image: np.ndarray, name: str) -> np.ndarray:
    """An upright uint8 film made to look like check class ``name`` (orientation and polarity only)."""
    parts = name.split(";")
    for part in parts:
        if part.startswith("rotated-"):
            image = turned(image, int(part.split("-")[1]))
    return inverted(image) if "inverted" in parts else image


def quadrant(image: np.ndarray, which: str) -> np.ndarray:
    """One quarter of the area: the half-height, half-width corner ``which``."""
    rows, cols = image.shape
    r0 = 0 if which.startswith("top") else rows - rows // 2
    c0 = 0 if which.endswith("left") else cols - cols // 2
    return image[r0:r0 + rows // 2, c0:c0 + cols // 2]


def random_crop(image: np.ndarray, rng: np.random.Generator, area: tuple[float, float]) -> np.ndarray:
    rows, cols = image.shape
    share = rng.uniform(*area)
    aspect = rng.uniform(0.7, 1.4)
    h = int(np.clip(round(rows * np.sqrt(share * aspect)), 8, rows))
    w = int(np.clip(round(cols * np.sqrt(share / aspect)), 8, cols))
    r0, c0 = rng.integers(0, rows - h + 1), rng.integers(0, cols - w + 1)
    return image[r0:r0 + h, c0:c0 + w]


MARKER_TEXTS = ("L", "R", "AP", "PA", "PORTABLE", "ERECT", "SUPINE", "12/03", "ICU", "DAY 4")


def burned_in_text(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three markers or words burned in, white (sometimes on a black box), anywhere."""
    import cv2

    out = image.copy()
    rows, cols = out.shape
    for _ in range(int(rng.integers(1, 4))):
        text = MARKER_TEXTS[int(rng.integers(0, len(MARKER_TEXTS)))]
        scale = float(rng.uniform(0.2, 1.0)) * min(rows, cols) / 200
        thickness = max(1, int(round(scale * 2)))
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x, y = int(rng.integers(0, max(1, cols - w))), int(rng.integers(h + 1, max(h + 2, rows)))
        if rng.random() < 0.3:
            cv2.rectangle(out, (x - 2, y - h - 2), (x + w + 2, y + 4), 0, -1)
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return out


def jitter(image: np.ndarray, rng: np.random.Generator, wider_framing: bool = False, mirror: bool = True) -> np.ndarray:
    """What differs between hospitals without changing what the film is: framing (crops to 60–100 %
    of the area, borders), a small tilt, mirroring (unless ``mirror`` is false: the laterality head's
    examples), gamma, blur and noise. ``wider_framing``: crops to 50–100 % and, on 30 % of films,
    burned-in markers (``--wider-framing``, not in the bundled head)."""
    import cv2

    out = image
    if rng.random() < (0.7 if wider_framing else 0.6):
        out = random_crop(out, rng, (0.5, 1.0) if wider_framing else (0.6, 1.0))
    if rng.random() < 0.2:
        pad = [int(rng.integers(0, max(1, s // 8))) for s in (out.shape[0], out.shape[0], out.shape[1], out.shape[1])]
        out = cv2.copyMakeBorder(out, *pad, cv2.BORDER_CONSTANT, value=int(rng.choice([0, 255])))
    if rng.random() < 0.3:
        rows, cols = out.shape
        matrix = cv2.getRotationMatrix2D((cols / 2, rows / 2), float(rng.uniform(-12, 12)), 1.0)
        out = cv2.warpAffine(out, matrix, (cols, rows), borderMode=cv2.BORDER_REFLECT)
    if wider_framing and rng.random() < 0.3:
        out = burned_in_text(out, rng)
    if rng.random() < 0.5 and mirror:
        out = out[:, ::-1]
    if rng.random() < 0.5:
        out = (255 * (out / 255.0) ** rng.uniform(0.6, 1.6)).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.2:
        noisy = out.astype(np.float32) + rng.normal(0, rng.uniform(2, 10), out.shape)
        out = np.clip(noisy, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def non_chest_variant(image: np.ndarray, rng: np.random.Generator, wider_framing: bool = False) -> np.ndarray:
    out = random_crop(image, rng, (0.3, 1.0)) if rng.random() < 0.6 else image
    out = turned(out, 90 * int(rng.integers(0, 4)))
    if rng.random() < 0.3:
        out = inverted(out)
    return jitter(out, rng, wider_framing)


# --------------------------------------------------------------------------- data

def read_films(manifest: Path, split: str, limit: int | None = None) -> list[tuple[dict, np.ndarray]]:
    """(row, uint8 film) for each row of ``split`` (the curated manifest's ``path`` column)."""
    import cv2

    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == split]
    rows = rows[:limit] if limit else rows
    films = []
    for row in rows:
        image = cv2.imread(row["path"], cv2.IMREAD_GRAYSCALE)
        if image is None:
            logger.warning("%s: cannot be read, skipped", row["path"])
            continue
        films.append((row, image))
    return films


def feature_rows(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([features(thumbnail(image)) for image in images]) if images else np.zeros((0, 0), np.float32)


def training_set(films, non_chest, rng, non_chest_per_image: int, crop_share: float,
                 wider_framing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features and class indices: each film upright (jittered) and as one other orientation/polarity;
    ``crop_share`` of them also cropped (half to one quadrant, half to 15–40 % anywhere); each non-chest
    image ``non_chest_per_image`` times, varied."""
    images, labels = [], []
    turns = [c for c in CHECK_CLASSES if c not in (UPRIGHT, NOT_CHEST, CROPPED)]
    for _, film in films:
        images.append(jitter(film, rng, wider_framing))
        labels.append(UPRIGHT)
        name = turns[int(rng.integers(0, len(turns)))]
        images.append(as_check_class(jitter(film, rng, wider_framing), name))
        labels.append(name)
        if rng.random() < crop_share:
            if rng.random() < 0.5:
                crop = quadrant(film, QUADRANTS[int(rng.integers(0, 4))])
            else:
                crop = random_crop(film, rng, (0.15, 0.4))
            images.append(jitter(crop, rng, wider_framing))
            labels.append(CROPPED)
    for item in non_chest:
        for _ in range(non_chest_per_image):
            images.append(non_chest_variant(item.pixels, rng, wider_framing))
            labels.append(NOT_CHEST)
    x = feature_rows(images)
    y = np.array([CHECK_CLASSES.index(label) for label in labels])
    return x, y


def check_set(films, non_chest, rng) -> list[tuple[str, str, np.ndarray]]:
    """(name, expected reason, image): every film untouched ("") and altered; the non-chest images
    as they are and turned 90°."""
    cases = []
    for row, film in films:
        cases.append((row["path"], "", film))
        for name in ("inverted", "rotated-90", "rotated-180", "rotated-270"):
            cases.append((row["path"], name, as_check_class(film, name)))
        which = QUADRANTS[int(rng.integers(0, 4))]
        cases.append((f"{row['path']}#{which}", CROPPED, quadrant(film, which)))
    for item in non_chest:
        cases.append((item.name, NOT_CHEST, item.pixels))
        cases.append((item.name + "#turned-90", NOT_CHEST, turned(item.pixels, 90)))
    return cases


# --------------------------------------------------------------------------- fit and measure

def fit_mlp(x: np.ndarray, y: np.ndarray, hidden: int, seed: int, alpha: float = 1e-2,
            classes: tuple[str, ...] = CHECK_CLASSES) -> Mlp:
    """An MLP with one hidden ReLU layer of ``hidden`` units on standardised ``x``; ``y`` indexes ``classes``."""
    from sklearn.neural_network import MLPClassifier

    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    model = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=200, early_stopping=True,
                          validation_fraction=0.1, n_iter_no_change=10, random_state=seed)
    model.fit((x - mean) / scale, y)
    if list(model.classes_) != list(range(len(classes))):
        raise RuntimeError(f"some check classes had no training examples: {model.classes_}")
    logger.info("MLP: %d iterations, training loss %.4f", model.n_iter_, model.loss_)
    weights, biases = list(model.coefs_), list(model.intercepts_)
    if len(classes) == 2:  # sklearn's one logistic output z: softmax over (0, z) is the same probability
        weights[-1] = np.hstack([np.zeros_like(weights[-1]), weights[-1]])
        biases[-1] = np.r_[0.0, biases[-1]]
    return Mlp(mean.astype(np.float32), scale.astype(np.float32),
               tuple(w.astype(np.float32) for w in weights), tuple(b.astype(np.float32) for b in biases))


def framing_flags(checker: ImageChecker, films) -> dict:
    """Share of ``films`` flagged (and why) after each framing shift of the classifier's evaluation
    (``training.framing_shift``: thorax crop, zoom-outs, tilt, burned-in markers): films a hospital may
    send as they are, which should stay in scope."""
    from .framing_shift import FRAMING_SHIFTS

    out = {}
    for name, (_, shift) in FRAMING_SHIFTS.items():
        decisions = [checker.check(np.clip(shift(film.astype(np.float32) / 255.0), 0.0, 1.0)) for _, film in films]
        out[name] = {"n": len(decisions), "flagged_share": float(np.mean([d.flagged for d in decisions])),
                     "reasons": dict(Counter(d.reasons for d in decisions if d.flagged))}
    return out


def summarise(cases, decisions) -> dict:
    """Per expected reason: how many, how many flagged, how many flagged with that very reason."""
    table: dict[str, Counter] = {}
    for (_, expected, _), decision in zip(cases, decisions):
        counts = table.setdefault(expected or "untouched", Counter())
        counts["n"] += 1
        counts["flagged"] += decision.flagged
        counts["right_reason"] += decision.reasons == expected if expected else not decision.flagged
        counts["reason:" + (decision.reasons or "in scope")] += 1
    out = {}
    for key, counts in table.items():
        n = counts["n"]
        out[key] = {"n": n, "flagged": counts["flagged"], "flagged_share": counts["flagged"] / n,
                    "right_reason": counts["right_reason"], "right_reason_share": counts["right_reason"] / n,
                    "reasons": {k[7:]: v for k, v in sorted(counts.items()) if k.startswith("reason:")}}
    altered = [v for k, v in out.items() if k != "untouched"]
    out["all_altered"] = {"n": sum(v["n"] for v in altered), "right_reason": sum(v["right_reason"] for v in altered)}
    out["all_altered"]["right_reason_share"] = out["all_altered"]["right_reason"] / out["all_altered"]["n"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("training/work/curated/split_manifest.csv"))
    parser.add_argument("--out", type=Path, default=Path("resources/models/image-checks.json"))
    parser.add_argument("--report", type=Path, default=Path("training/reports/image_checks"))
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (default 256)")
    parser.add_argument("--alpha", type=float, default=1e-2, help="L2 penalty of the MLP (default 0.01)")
    parser.add_argument("--val-flag-rate", type=float, default=0.01,
                        help="share of untouched validation films the threshold may flag (default 0.01)")
    parser.add_argument("--non-chest-per-image", type=int, default=40,
                        help="varied copies of each non-chest training image (default 40)")
    parser.add_argument("--crop-share", type=float, default=0.4,
                        help="share of training films also given as a cropped example (default 0.4)")
    parser.add_argument("--wider-framing", action="store_true",
                        help="upright films also cropped to 50 %% and given burned-in markers (an experiment: "
                             "fewer thorax crops flagged, fewer non-chest images with the right reason)")
    parser.add_argument("--limit", type=int, help="films per split (a quick trial)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.report.mkdir(parents=True, exist_ok=True)
    with script_logging(args.report / "image_checks.log"):
        return _run(args)


def _run(args) -> int:
    from training.non_chest import non_chest_images

    rng = np.random.default_rng(args.seed)
    started = time.time()
    others = non_chest_images()
    train_other = [i for i in others if i.split == "train"]
    test_other = [i for i in others if i.split == "test"]
    train = read_films(args.manifest, "train", args.limit)
    val = read_films(args.manifest, "val", args.limit)
    test = read_films(args.manifest, "test", args.limit)
    logger.info("films: train %d, val %d, test %d; non-chest images: train %d, test %d",
                len(train), len(val), len(test), len(train_other), len(test_other))
    x, y = training_set(train, train_other, rng, args.non_chest_per_image, args.crop_share, args.wider_framing)
    logger.info("training examples: %s", dict(Counter(CHECK_CLASSES[i] for i in y)))
    mlp = fit_mlp(x, y, args.hidden, args.seed, args.alpha)

    # Not *.json: every *.json in the models folder is read as a model card.
    weights_path = args.out.with_name(args.out.stem + ".mlp")
    weights_path.write_text(mlp.to_json(), encoding="utf-8")
    card = ImageCheckCard(name=args.out.stem, feature_version=FEATURE_VERSION, classes=list(CHECK_CLASSES),
                          weights_file=weights_path.name,
                          weights_sha256=hashlib.sha256(weights_path.read_bytes()).hexdigest(), threshold=0.0)
    card.path = args.out
    checker = ImageChecker(card).load()

    val_upright = checker.probabilities(feature_rows([f for _, f in val]))[:, CHECK_CLASSES.index(UPRIGHT)]
    card.threshold = float(np.quantile(val_upright, args.val_flag_rate))
    val_cases = check_set(val, [], np.random.default_rng(args.seed + 1))
    val_summary = summarise(val_cases, [checker.decide(p) for p in checker.probabilities(feature_rows([c[2] for c in val_cases]))])
    val_framing = framing_flags(checker, val)
    logger.info("validation films flagged under framing shifts: %s", {k: round(v["flagged_share"], 4) for k, v in val_framing.items()})
    test_cases = check_set(test, test_other, np.random.default_rng(args.seed + 2))
    test_probs = checker.probabilities(feature_rows([c[2] for c in test_cases]))
    test_decisions = [checker.decide(p) for p in test_probs]
    test_summary = summarise(test_cases, test_decisions)

    card.training_data = {
        "films": f"{args.manifest} train split ({len(train)} films), each upright once (jittered), once "
                 f"turned and/or inverted, and {args.crop_share:.0%} of them cropped",
        "non_chest": "training families of training.non_chest (pydicom test files, skimage and sklearn sample "
                     f"images): {len(train_other)} images x {args.non_chest_per_image} variants",
        "examples": dict(Counter(CHECK_CLASSES[i] for i in y)),
        "threshold_rule": f"the {args.val_flag_rate} quantile of p(upright) on the {len(val)} untouched validation films",
    }
    card.validation_metrics = dict(val_summary, framing_shifts=val_framing)
    card.test_metrics = {"check_set": test_summary,
                         "non_chest_test_images": len(test_other),
                         "non_chest_test_families": sorted({i.family for i in test_other})}
    card.notes = ("Flags films turned 90/180/270 degrees, inverted, cropped to a quarter, and images that are not chest "
                  "radiographs (photographs, CT, MR, ultrasound, nuclear medicine, documents). Not trained on lateral "
                  "chest films or radiographs of other body parts; cannot tell a mirrored film. Research use only.")
    card.created_by_command = ("python -m training.image_checks --manifest " + str(args.manifest) + " --out "
                               + str(args.out) + " --report " + str(args.report)
                               + (" --wider-framing" if args.wider_framing else "")
                               + (f" --limit {args.limit}" if args.limit else ""))
    card.save(args.out)
    _write_cases(args.report / "test_check_set.csv", test_cases, test_decisions)
    (args.report / "summary.json").write_text(json.dumps({"validation": val_summary, "validation_framing": val_framing,
                                                          "test": test_summary,
                                                          "threshold": card.threshold}, indent=2) + "\n")
    logger.info("threshold %.4f; test check set: %s", card.threshold,
                {k: (v.get("right_reason_share"), v.get("flagged_share")) for k, v in test_summary.items()})
    logger.info("done in %.0f s", time.time() - started)
    return 0


def _write_cases(path: Path, cases, decisions) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "expected", "flagged_reason", "p_upright", "p_reason"])
        for (name, expected, _), decision in zip(cases, decisions):
            p_reason = decision.probabilities.get(decision.reasons, "") if decision.reasons else ""
            writer.writerow([name, expected, decision.reasons, f"{decision.probabilities[UPRIGHT]:.4f}",
                             f"{p_reason:.4f}" if p_reason != "" else ""])


if __name__ == "__main__":
    raise SystemExit(main())
