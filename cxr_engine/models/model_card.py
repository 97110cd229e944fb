"""Model cards: the JSON beside each weights file that says what the weights are and may be used for."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from ..errors import ModelError
from ..pixels.preprocessing import check_preprocessing_version
from .registry import get_architecture

CLASSES = ("normal", "pneumonia", "covid")
CLASS_DISPLAY_NAMES = {"normal": "Normal", "pneumonia": "Pneumonia", "covid": "COVID-19"}
INTENDED_USE = "Research use only; not a medical device. Not for diagnosis or treatment decisions."


class CardFile:
    """What every model card does with its JSON file (the classifier's :class:`ModelCard` and the lung
    model's ``lung_fields.LungModelCard``): files named relative to the card's folder, written
    atomically, read back with the fields it must have (``REQUIRED``) checked.

    For dataclasses with a ``path`` field (the card's JSON, not saved in it).
    """

    REQUIRED: tuple[str, ...] = ()

    def beside(self, name: str) -> Path:
        """``name`` in the card's folder (the working directory for a card never saved or loaded)."""
        return (self.path.parent if self.path else Path.cwd()) / name

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the card atomically to ``path`` and remember it there."""
        from ..outputs.atomic import write_text_atomic

        write_text_atomic(Path(path), self.to_json())
        self.path = Path(path)

    @staticmethod
    def read_json(path: Path) -> dict:
        """The card file's JSON; ``ModelError`` when it cannot be read or parsed."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot read model card ({exc})") from exc

    @classmethod
    def named(cls, name_or_path: str | None, default_name: str, what: str, models_dir: Path | None = None):
        """The card ``<name_or_path or default_name>.json`` in the models folder (default: the bundled
        one), or a card JSON by path; ``ModelError`` naming ``what`` when there is none."""
        if name_or_path and Path(name_or_path).suffix == ".json":
            return cls.load(name_or_path)
        from ..resources import models_dir as default_dir

        path = Path(models_dir or default_dir()) / f"{name_or_path or default_name}.json"
        if not path.exists():
            raise ModelError(f"{path}: no {what} bundled")
        return cls.load(path)

    @classmethod
    def from_json_data(cls, data: dict, path: Path):
        """The card from its JSON object, remembered at ``path``; ``ModelError`` when it is not an object
        or lacks a ``REQUIRED`` field. Unknown keys are ignored (cards written by later versions)."""
        if not isinstance(data, dict):
            raise ModelError(f"{path}: a model card must be a JSON object")
        missing = [f for f in cls.REQUIRED if f not in data]
        if missing:
            raise ModelError(f"{path}: model card lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.path = path
        return card


def with_article(word: str) -> str:
    """``word`` after its indefinite article: ``a segmentation``, ``an image-checks`` (by its first letter)."""
    return f"{'an' if word[:1].lower() in tuple('aeiou') else 'a'} {word}"


@dataclass(kw_only=True)
class CardRecord(CardFile):
    """What a model's card records besides the model itself (the classifier's :class:`ModelCard`, the lung
    model's ``lung_fields.LungModelCard``): the data it learned from, its test and validation figures,
    licence, intended use, notes and the command that made it; ``path`` is the card's JSON file (not
    saved in it). Keyword-only, and written after the model's own fields."""

    training_data: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)
    licence: str = ""
    intended_use: str = INTENDED_USE
    notes: str = ""
    created_by_command: str = ""
    path: Path | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        record = [f.name for f in fields(CardRecord) if f.name != "path"]
        ordered = {k: v for k, v in data.items() if k not in record} | {k: data[k] for k in record}
        return json.dumps(self._ordered_model_keys(ordered), indent=2) + "\n"

    def _ordered_model_keys(self, data: dict) -> dict:
        return data


@dataclass
class NetworkCard(CardRecord):
    """What a network's card (the classifier's :class:`ModelCard`, the lung model's
    ``lung_fields.LungModelCard``) says of the network: its name and architecture, the input it expects
    (side ``input_size`` in pixels, ``in_chans`` channels, per-channel ``mean``/``std`` of the [0, 1]
    input, the ``cxr_engine.pixels.preprocessing`` version: timm's data config) and its weights file
    with that file's SHA-256 (checked before loading)."""

    name: str
    architecture: str
    input_size: int
    in_chans: int
    mean: list[float]
    std: list[float]
    preprocessing_version: str
    weights_file: str
    weights_sha256: str

    #: The card's own fields that its JSON holds between ``architecture`` and ``input_size``.
    WRITTEN_BEFORE_INPUT: ClassVar[tuple[str, ...]] = ()

    def _ordered_model_keys(self, data: dict) -> dict:
        keys = list(data)
        for offset, name in enumerate(self.WRITTEN_BEFORE_INPUT):
            keys.remove(name)
            keys.insert(keys.index("architecture") + 1 + offset, name)
        return {k: data[k] for k in keys}

    @property
    def weights_path(self) -> Path:
        """The weights file, relative to the card's folder."""
        return self.beside(self.weights_file)

    def check_input(self, where) -> None:
        """``ModelError`` naming ``where`` when ``mean`` or ``std`` has not ``in_chans`` values."""
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ModelError(f"{where}: mean/std must have {self.in_chans} values")


def display_classes(classes) -> list[str]:
    """A classifier card's class names as the reader sees them (``CLASS_DISPLAY_NAMES``)."""
    return [CLASS_DISPLAY_NAMES.get(c, c) for c in classes]


def summary_line(card, what: str, score: bool = True) -> str:
    """``name [what, test accuracy A] (below the project's bar)``: a classifier card's one line (any card
    with ``name``, ``test_metrics`` and ``meets_bar``: ``ModelCard``, ``EnsembleCard``); without the accuracy
    when not ``score`` (the AI panel gives it on the next line, ``model_limits.metric_lines``)."""
    acc = card.test_metrics.get("accuracy")
    score = f", test accuracy {acc:.3f}" if score and isinstance(acc, (int, float)) else ""
    bar = "" if card.meets_bar else " (below the project's bar)"
    return f"{card.name} [{what}{score}]{bar}"


def bar_failures(card) -> list[str]:
    """The checks of the project's bar a classifier card's model fails, in the words its evaluation wrote
    them (``test_metrics["bar_failures"]``, list of str; ``training.export.bar_failures``); empty for a
    model that meets the bar and for a card written before the list was recorded."""
    failures = (card.test_metrics or {}).get("bar_failures")
    return [str(f) for f in failures] if isinstance(failures, list) else []


def below_bar_text(card, subject: str = "this model") -> str:
    """``"<subject> is below the project's bar; it fails: A; B."`` (the card's recorded failures), or with
    a pointer to its card when none are recorded; empty when the card's model meets the bar."""
    if card.meets_bar:
        return ""
    failures = bar_failures(card)
    if not failures:
        return f"{subject} is below the project's bar (its model card says which checks it fails)."
    return f"{subject} is below the project's bar; it fails: {'; '.join(failures)}."


@dataclass
class ModelCard(NetworkCard):
    """Everything needed to rebuild, verify and honestly present one set of weights."""

    classes: list[str]
    weights_dtype: str = "float32"
    onnx_file: str = ""  # the same network exported for ONNX Runtime (training.export_onnx); optional
    onnx_sha256: str = ""
    temperature: float = 1.0
    meets_bar: bool = False

    REQUIRED = ("name", "architecture", "classes", "input_size", "in_chans", "mean", "std",
                "preprocessing_version", "weights_file", "weights_sha256")
    WRITTEN_BEFORE_INPUT = ("classes",)

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX export, relative to the card's folder; ``None`` when the card names none."""
        return self.beside(self.onnx_file) if self.onnx_file else None

    def display_classes(self) -> list[str]:
        return display_classes(self.classes)

    def summary(self, score: bool = True) -> str:
        """One line for status bars, CSV rows and reports (``score``: with the test accuracy)."""
        return summary_line(self, f"{self.architecture}, {self.input_size}px", score)

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        """The classifier card at ``path``; ``ModelError`` when it is unreadable, incomplete or
        inconsistent, or another task's card (the lung model's)."""
        path = Path(path)
        data = cls.read_json(path)
        if isinstance(data, dict) and data.get("task", "classification") != "classification":
            # e.g. the lung segmentation model's card (cxr_engine.models.lung_fields): never a classifier
            raise ModelError(f"{path}: {with_article(str(data['task']))} model card, not a classifier's")
        if isinstance(data, dict) and data.get("architecture") == "ensemble":
            raise ModelError(f"{path}: an ensemble card (cxr_engine.models.ensemble_card); load it with load_card")
        card = cls.from_json_data(data, path)
        card.validate()
        return card

    def validate(self) -> None:
        """Raise ``ModelError`` when the card is inconsistent."""
        where = self.path or self.name
        try:
            get_architecture(self.architecture)
        except KeyError as exc:
            raise ModelError(f"{where}: {exc.args[0]}") from None
        self.check_input(where)
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ModelError(f"{where}: classes must be a non-empty list of unique names")
        if self.temperature <= 0:
            raise ModelError(f"{where}: temperature must be positive, got {self.temperature}")
        try:
            check_preprocessing_version(self.preprocessing_version, where)
        except ValueError as exc:
            raise ModelError(str(exc)) from None


def load_card(path: str | Path):
    """The classifier card at ``path``: a ``ModelCard``, or an ``ensemble_card.EnsembleCard`` for a card
    whose architecture is ``ensemble`` (its members loaded and checked). ``ModelError`` as their ``load``."""
    from .ensemble_card import EnsembleCard, is_ensemble_data

    path = Path(path)
    if is_ensemble_data(ModelCard.read_json(path)):
        return EnsembleCard.load(path)
    return ModelCard.load(path)


def is_classifier_card(card) -> bool:
    """Whether ``card`` is a classifier's card object (a ``ModelCard`` or an ``EnsembleCard``)."""
    from .ensemble_card import EnsembleCard

    return isinstance(card, (ModelCard, EnsembleCard))


def list_bundled(models_dir: Path | None = None) -> list[ModelCard]:
    """Every readable classifier card in ``models_dir`` (default: the bundled ``resources/models``),
    ensembles (``EnsembleCard``) included."""
    from ..resources import models_dir as default_dir

    folder = Path(models_dir) if models_dir else default_dir()
    cards = []
    for path in sorted(folder.glob("*.json")):
        try:
            cards.append(load_card(path))
        except ModelError:
            continue
    return cards


def best_card(cards) -> ModelCard | None:
    """Among ``cards``, those that meet the bar, the best validation macro-F1; ``None`` when none meets it."""
    eligible = [c for c in cards if c.meets_bar]
    if not eligible:
        return None
    return max(eligible, key=lambda c: c.validation_metrics.get("macro_f1", 0.0))


def default_card(models_dir: Path | None = None) -> ModelCard | None:
    """The model offered first: among the bundled cards that meet the bar, the best validation macro-F1."""
    return best_card(list_bundled(models_dir))


def find_card(name_or_path: str, models_dir: Path | None = None) -> ModelCard:
    """A bundled model by name, or a card JSON by path (a name ending in ``.json`` or holding a path
    separator is a path). ``ModelError``: "no such model card file: PATH" for a path that does not exist,
    "no bundled model named ..." for an unknown name (with why, when ``<models_dir>/<name>.json`` is a card
    that cannot be used: another task's, an ensemble whose member changed), or why the card cannot be read."""
    candidate = Path(name_or_path)
    if candidate.suffix.lower() == ".json" or os.sep in name_or_path or (os.altsep and os.altsep in name_or_path):
        if not candidate.is_file():
            raise ModelError(f"no such model card file: {name_or_path}")
        return load_card(candidate)
    for card in list_bundled(models_dir):
        if card.name == name_or_path:
            return card
    from ..resources import models_dir as default_dir

    named = Path(models_dir or default_dir()) / f"{name_or_path}.json"
    if named.is_file():  # a card of that name that cannot be used: say why (another task's, a member's sha256, ...)
        try:
            load_card(named)
        except ModelError as exc:
            raise ModelError(f"no bundled model named {name_or_path!r} can be used: {exc}") from None
    names = ", ".join(c.name for c in list_bundled(models_dir)) or "none"
    raise ModelError(f"no bundled model named {name_or_path!r} (bundled: {names})")
