"""The classification state of the current image, observed by the result panel."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .controllers.results import ClassificationResults

NO_MODEL, LOADING, READY, CLASSIFYING, DONE, FAILED = "no_model", "loading", "ready", "classifying", "done", "failed"


class ResultModel(QObject):
    """Model in use, the current image's prediction (or why there is none), and the heat-map's class.

    ``changed`` fires once per update; ``heatmapClassChanged`` when the reader picks another class
    for the heat-map (``""`` = the predicted class).
    """

    changed = Signal()
    heatmapClassChanged = Signal(str)

    def __init__(self, parent: QObject | None = None, results: ClassificationResults | None = None):
        super().__init__(parent)
        #: The one owner of predictions (``controllers.results``); this model only says which is shown.
        self.results = results if results is not None else ClassificationResults()
        self.path: Path | None = None  # the current image's file
        self.decoding = False  # the current image's file is being decoded (``set_decoding``)
        self._classified = False  # the current image's prediction is on screen
        self.state = NO_MODEL
        self.message = ""
        self._film_failed = False  # FAILED is this film's own (not classified, classification failed), not the model's
        self.model_name = ""
        self.card = None  # the model card in use (cxr_engine.models.model_card.ModelCard), for its limits
        self.model_summary = ""
        self.below_bar = False
        self.device = ""
        self.model_warning = ""
        self.classes: tuple[str, ...] = ()
        self._film_parts: tuple[str, tuple[str, ...], tuple[str, ...]] = ("", (), ())  # (corrected, own, notes)
        #: The image checks' verdict on the current image (``cxr_engine.models.image_checks.ImageCheck``), or None.
        self.image_check = None
        #: The current image's header (``ImageMetadata``; a View Position string in tests): its facts may
        #: put the film out of scope (``cxr_engine.models.suitability.header_scope_reasons``).
        self.header = None
        self.scope_limit: float | None = None  # the card's out-of-scope threshold (cxr_engine.models.scope_score)
        self.heatmap_class = ""

    def set_model(self, name: str, summary: str, classes: tuple[str, ...], below_bar: bool, card=None) -> None:
        self.model_name, self.model_summary, self.classes, self.below_bar = name, summary, tuple(classes), below_bar
        self.card = card
        from cxr_engine.models.scope_score import threshold

        self.scope_limit = threshold(card)
        self.state, self.message = LOADING, "Loading the model…"
        self.changed.emit()

    def set_no_model(self, message: str) -> None:
        self.model_name = self.model_summary = self.device = self.model_warning = ""
        self.card, self.scope_limit = None, None
        self.classes, self._classified, self.below_bar = (), False, False
        self.state, self.message = NO_MODEL, message
        self.changed.emit()

    def set_ready(self, device: str, warning: str = "") -> None:
        """The model is loaded on ``device``; ``warning`` e.g. says CUDA was asked for but is missing."""
        self.device, self.model_warning = device, warning
        if self.state in (LOADING, NO_MODEL, FAILED):
            self.state, self.message = READY, ""
        self.changed.emit()

    def set_model_failed(self, message: str) -> None:
        self.state, self.message, self._classified, self._film_failed = FAILED, message, False, False
        self.changed.emit()

    def set_image(self, warnings: tuple[str, ...], header=None, path: Path | None = None, corrected: str = "",
                  notes: tuple[str, ...] = ()) -> None:
        """A new image (of file ``path``) is shown: no prediction shown, the predicted class as the
        heat-map target. ``warnings`` are the image's own (``suitability.image_warnings``), ``corrected``
        the note of a film shown corrected (``image_checks.correction_note``), ``notes`` the file's (identical
        copies, a shared SOP Instance UID). ``header`` is its ``ImageMetadata`` (a lateral view, another body
        part or modality, or an age outside the training data put the film out of scope)."""
        self._show_film((corrected, tuple(warnings), tuple(notes)), header, path, decoding=False)

    def set_decoding(self, path: Path) -> None:
        """The film of ``path`` is being decoded: nothing of the film shown before it (prediction, warnings,
        header, image checks) stays on screen meanwhile; ``set_image`` follows once it is shown."""
        self._show_film(("", (), ()), None, path, decoding=True)

    def _show_film(self, parts: tuple[str, tuple[str, ...], tuple[str, ...]], header, path: Path | None,
                   decoding: bool) -> None:
        self._film_parts, self._classified = parts, False
        if self.state == FAILED and self._film_failed:  # the film before's "Not classified: …" is not this film's
            self.state, self.message, self._film_failed = READY, "", False
        self.path = Path(path) if path is not None else None
        self.decoding = decoding
        self.header = header
        self.image_check = None
        self.heatmap_class = ""
        self.changed.emit()

    def forget_prediction(self) -> None:
        """The model changed: the current image's prediction and image checks (made for the previous model's
        input) are no longer shown; its film, header and warnings stay."""
        self._classified, self.image_check = False, None
        self.changed.emit()

    def set_image_check(self, check) -> None:
        """The image checks' verdict on the current image (None: not checked)."""
        if check != self.image_check:
            self.image_check = check
            self.changed.emit()

    @property
    def warnings(self) -> tuple[str, ...]:
        """The image's warnings, then, for a turned film the image checks could not offer corrected, why
        (``ImageCheck.withheld``: the banner names the fault, not that the film is left as it is)."""
        from cxr_engine.models.image_checks import NOT_CORRECTED

        withheld = self.image_check is not None and self.image_check.withheld
        return self.image_warnings + ((NOT_CORRECTED,) if withheld else ())

    @property
    def image_warnings(self) -> tuple[str, ...]:
        """The current image's warnings for the panel: its correction's note, its own, then the file's notes. Not
        the model's note on its prediction (:attr:`model_note`): the panel shows it under the probabilities, apart
        from the header's notes (a tester found it buried among them); :attr:`film_warnings` keeps it."""
        corrected, own, notes = self._film_parts
        return (*filter(None, [corrected]), *own, *notes)

    @property
    def model_note(self) -> str:
        """The model's note on the current image's prediction (``ensemble.disagreement_note``: an averaged model's
        networks disagree), ``""`` without one."""
        from cxr_engine.models.ensemble import disagreement_note

        if self.state != DONE or not self.prediction:
            return ""
        return disagreement_note(self.card, self.prediction, self.out_of_scope)

    @property
    def film_warnings(self) -> tuple[str, ...]:
        """The current image's whole warnings, as the CSV's ``warnings`` column and the PDF give them, in their
        order (``image_checks.film_warnings``): with what the image checks and the model's scope found, which
        the panel leaves to its banner (the record for ``--result-json``)."""
        return self.film_warnings_with_notes(self._film_parts[2])

    def film_warnings_with_notes(self, notes) -> tuple[str, ...]:
        """:attr:`film_warnings` with ``notes`` as the file's notes: a de-identified output's
        (``Workspace.file_notes(path, deidentified=True)``: the copies counted, no path, no UID)."""
        from cxr_engine.models.image_checks import film_warnings

        corrected, own, _ = self._film_parts
        check = self.image_check
        return film_warnings(self.out_of_scope, check.warning if check is not None else None, own, corrected,
                             tuple(notes), self.model_note)

    @property
    def out_of_scope(self) -> str:
        """The current image's out-of-scope reasons: the header's, the image checks', and ``uncertain`` when
        the prediction passes the card's out-of-scope threshold (``cxr_engine.models.scope_score``); ``""`` in scope."""
        from cxr_engine.models.scope_score import film_out_of_scope

        prediction = self.prediction if self.state == DONE else None
        return film_out_of_scope(self.image_check, prediction, self.scope_limit, self.header)

    def set_classifying(self) -> None:
        self.state, self.message = CLASSIFYING, "Classifying…"
        self.changed.emit()

    @property
    def prediction(self):
        """The current image's ``Prediction`` from ``results`` once it is shown as classified, else None."""
        return self.results.prediction(self.path) if self._classified else None

    def set_prediction(self, prediction=None) -> None:
        """Show the current image as classified; ``prediction`` is stored in ``results`` for it first
        (None: it is there already)."""
        if prediction is not None:
            self.results.add_prediction(self.path, prediction)
        self.state, self.message, self._classified = DONE, "", True
        self.changed.emit()

    def set_failed(self, message: str) -> None:
        """The current film could not be classified (``message`` says why); the next film shown clears it."""
        self.state, self.message, self._film_failed = FAILED, message, True
        self.changed.emit()

    def set_heatmap_class(self, cls: str) -> None:
        if cls != self.heatmap_class:
            self.heatmap_class = cls
            self.heatmapClassChanged.emit(cls)

    @property
    def has_model(self) -> bool:
        return bool(self.model_name) and self.state != NO_MODEL
