"""The card of an averaged model (an "ensemble"): bundled classifiers averaged, with no weights of its own.

An ensemble card is a model card JSON in the models folder with ``"architecture": "ensemble"`` and
``"members": [{"card": NAME, "weight": w, "weights_sha256": SHA}, ...]``: each member is another bundled
classifier card, named by its ``name`` and pinned by the ``weights_sha256`` its card had when the
ensemble was made (``python -m training.ensemble_card``). The ensemble's own ``logit_offsets`` (one per
class, added after averaging), ``temperature``, ``meets_bar`` and figures are its own: the members' are
never reused. How the members' outputs are combined: ``cxr_engine.models.ensemble``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from .model_card import CardRecord, ModelCard, display_classes, summary_line

ARCHITECTURE = "ensemble"
#: The card key of how often the members disagree and how often the average is then right (training.member_agreement).
AGREEMENT_KEY = "member_agreement"


def is_ensemble_data(data) -> bool:
    """Whether a card file's JSON object is an ensemble card's."""
    return isinstance(data, dict) and data.get("architecture") == ARCHITECTURE


@dataclass
class EnsembleCard(CardRecord):
    """An averaged model: its members (bundled classifier cards, by name, weight and pinned weights
    sha256), its classes (the members', in the same order), its ``logit_offsets`` (one per class) and
    ``temperature``."""

    name: str
    architecture: str
    classes: list[str]
    members: list[dict]
    logit_offsets: list[float]
    temperature: float = 1.0
    meets_bar: bool = False
    #: :data:`AGREEMENT_KEY`: ``films``, ``disagree``, ``right_when_disagree``, ``right_when_agree`` of the
    #: validation split (``split``), the test split's under ``test`` ({} when not measured).
    member_agreement: dict = field(default_factory=dict)

    REQUIRED = ("name", "architecture", "classes", "members", "logit_offsets")

    def __post_init__(self) -> None:
        self._member_cards: list[ModelCard] | None = None

    @property
    def member_cards(self) -> list[ModelCard]:
        """The members' loaded cards, in member order (loaded and checked by :meth:`validate` on first use)."""
        if self._member_cards is None:
            self.validate()
        return self._member_cards

    # ------------------------------------------------------------------ what every card offers

    @property
    def member_weights(self) -> list[float]:
        """The members' weights, in member order (not normalised)."""
        return [float(m.get("weight", 1.0)) for m in self.members]

    @property
    def input_size(self) -> int:
        """The largest member input side in pixels: what the film must be decoded for (each member
        resizes for itself)."""
        return max(card.input_size for card in self.member_cards)

    @property
    def preprocessing_version(self) -> str:
        """The members' preprocessing when they share one, else the lung-box version (cxr-pre-2), whose
        decode request (full resolution) serves every member."""
        from ..pixels.preprocessing import LUNG_BOX_VERSION

        versions = {card.preprocessing_version for card in self.member_cards}
        return versions.pop() if len(versions) == 1 else LUNG_BOX_VERSION

    @property
    def weights_sha256(self) -> str:
        """A fingerprint of what the ensemble computes (not a file's digest): SHA-256 of its members'
        names, weights sha256 and weights, and its logit offsets. Validation tables pinned to it (the
        reliability table) and DICOM outputs use it as a single model's weights digest."""
        text = json.dumps({"members": [[m["card"], m.get("weights_sha256", ""), float(m.get("weight", 1.0))]
                                       for m in self.members],
                           "logit_offsets": [float(v) for v in self.logit_offsets]}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def display_classes(self) -> list[str]:
        return display_classes(self.classes)

    def summary(self, score: bool = True) -> str:
        """One line for status bars, CSV rows and reports (as ``ModelCard.summary``)."""
        return summary_line(self, "average of " + " + ".join(m["card"] for m in self.members), score)

    # ------------------------------------------------------------------ loading and checks

    @classmethod
    def load(cls, path: str | Path) -> "EnsembleCard":
        """The ensemble card at ``path`` with its members loaded; ``ModelError`` when it is unreadable,
        incomplete or inconsistent (see :meth:`validate`)."""
        path = Path(path)
        card = cls.from_json_data(cls.read_json(path), path)
        card.validate()
        return card

    def models_folder(self) -> Path:
        """Where the members' cards are: the card's own folder (the bundled folder for an unsaved card)."""
        if self.path is not None:
            return Path(self.path).parent
        from ..resources import models_dir

        return models_dir()

    def validate(self) -> None:
        """Check the card and load its members into ``member_cards``. ``ModelError`` naming the card
        when: the architecture is not ``ensemble``; classes are empty or repeated; the temperature is
        not positive; ``logit_offsets`` has not one finite value per class; there are fewer than two
        members, a member twice or a weight that is not positive; a member is not a bundled classifier
        card in :meth:`models_folder`, is itself an ensemble, has other weights than the pinned sha256
        (both named) or other classes (or order)."""
        where = self.path or self.name
        if self.architecture != ARCHITECTURE:
            raise ModelError(f"{where}: an ensemble card's architecture must be {ARCHITECTURE!r}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ModelError(f"{where}: classes must be a non-empty list of unique names")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ModelError(f"{where}: temperature must be positive, got {self.temperature}")
        offsets = self.logit_offsets
        if (not isinstance(offsets, list) or len(offsets) != len(self.classes)
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in offsets)):
            raise ModelError(f"{where}: logit_offsets must hold one finite number per class "
                             f"({len(self.classes)}), got {offsets!r}")
        if not isinstance(self.members, list) or len(self.members) < 2:
            raise ModelError(f"{where}: an ensemble needs at least two members")
        cards = [self._member_card(member, where) for member in self.members]
        names = [card.name for card in cards]
        if len(set(names)) != len(names):
            raise ModelError(f"{where}: a member is named twice ({', '.join(names)})")
        self._member_cards = cards

    def _member_card(self, member, where) -> ModelCard:
        if not isinstance(member, dict) or not isinstance(member.get("card"), str) or not member["card"]:
            raise ModelError(f"{where}: each member must be {{\"card\": NAME, \"weight\": w, \"weights_sha256\": SHA}}, "
                             f"got {member!r}")
        name, weight = member["card"], member.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise ModelError(f"{where}: member {name!r} has weight {weight!r}; weights must be positive")
        card = find_member(name, self.models_folder(), where)
        pinned = str(member.get("weights_sha256", "")).lower()
        if pinned != card.weights_sha256.lower():
            raise ModelError(f"{where}: member {name!r} is pinned to weights sha256 {pinned or '(none)'}, but "
                             f"its card {card.path} names {card.weights_sha256}; make the ensemble again "
                             "(python -m training.ensemble_card)")
        if list(card.classes) != list(self.classes):
            raise ModelError(f"{where}: member {name!r} ({card.path}) has classes {card.classes}, the ensemble "
                             f"{self.classes}; members must share the classes in the same order")
        return card


def find_member(name: str, folder: Path, where) -> ModelCard:
    """The classifier card named ``name`` in ``folder`` (``<name>.json`` first, else any card of that
    name); ``ModelError`` naming ``where`` when there is none or it is an ensemble."""
    candidates = [folder / f"{name}.json"] + sorted(p for p in folder.glob("*.json") if p.stem != name)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("name") != name:
            continue
        if is_ensemble_data(data):
            raise ModelError(f"{where}: member {name!r} ({path}) is itself an ensemble; an ensemble may not "
                             "contain an ensemble")
        return ModelCard.load(path)
    raise ModelError(f"{where}: member {name!r} is not a model card in {folder}")


def networks(card) -> list[ModelCard]:
    """The single-network cards ``card`` runs: an averaged model's members (in its order), else ``[card]``."""
    return list(card.member_cards) if isinstance(card, EnsembleCard) else [card]
