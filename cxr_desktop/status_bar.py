"""The main window's status bar: the pixel readout, job progress, the problems count and the model in use."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy

from .job_progress import JobProgress


class ModelLabel(QLabel):
    """Mirrors the ``ClassificationController``: the model's name and where it runs, or why there is none;
    the classify ``actions`` are enabled only while a model is loaded."""

    def __init__(self, classification, result, actions):
        super().__init__()
        self.classification, self.result, self.actions = classification, result, actions
        classification.modelChosen.connect(self.show_chosen)
        classification.modelReady.connect(self.show_ready)
        classification.modelUnavailable.connect(self.show_unavailable)
        self.show_chosen()

    def _enable(self, enabled: bool) -> None:
        for action in self.actions:
            action.setEnabled(enabled)

    def show_chosen(self) -> None:
        card = self.classification.card
        self.setText(f"Model: {card.name} (loading…)" if card else "No model")
        self.setToolTip(card.summary() if card else self.result.message)
        self._enable(False)

    def show_ready(self, device_text: str) -> None:
        self.setText(f"Model: {self.classification.card.name} · {device_text}")
        self._enable(True)

    def show_unavailable(self, message: str) -> None:
        if self.classification.card is not None:
            self.setText("Model failed to load")
            self.setToolTip(message)


def build(window, problems_dock, model_label: ModelLabel) -> None:
    """Fill ``window``'s status bar; sets ``window.readout``, ``progress``, ``problems_button`` and ``model_label``."""
    bar = window.statusBar()
    window.readout = QLabel()
    # Ignored: a long readout is cut, never widening the window beyond a small screen.
    window.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    bar.addWidget(window.readout, 1)
    window.progress = JobProgress()
    bar.addPermanentWidget(window.progress)
    window.problems_button = QPushButton()
    window.problems_button.setFlat(True)
    window.problems_button.hide()
    window.problems_button.clicked.connect(problems_dock.show)
    bar.addPermanentWidget(window.problems_button)
    window.model_label = model_label
    bar.addPermanentWidget(model_label)
    panel = window.problems
    for signal in (panel.countChanged, panel.copiesChanged, panel.clashesChanged):
        signal.connect(lambda _count: _show_problem_count(window.problems_button, panel))


def problems_text(problems: int, copies: int, clashes: int = 0, unclassified: int = 0) -> str:
    """The status bar's words for ``problems`` files left out, ``unclassified`` images of the tree that could
    not be read or classified (in the tree, so not left out), ``clashes`` SOP Instance UIDs claimed by
    different images and ``copies`` identical copies listed once (not errors: no warning sign for them alone)."""
    parts = [f"⚠ {problems} file(s) left out"] if problems else []
    if unclassified:
        parts.append(f"⚠ {unclassified} image(s) not classified")
    if clashes:
        parts.append(f"⚠ {clashes} shared SOP Instance UID(s)")
    if copies:
        parts.append(f"{copies} identical {'copy' if copies == 1 else 'copies'} listed once")
    return " · ".join(parts)


#: The problems button's widest text (elided beyond, whole in its tooltip), so it never widens a small screen's window.
PROBLEMS_TEXT_MAX_PX = 420


def _show_problem_count(button: QPushButton, panel) -> None:
    problems, copies, clashes = panel.problem_count(), panel.copy_count(), panel.clash_count()
    unclassified = panel.unclassified_count()
    text = problems_text(problems, copies, clashes, unclassified)
    button.setText(button.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, PROBLEMS_TEXT_MAX_PX))
    button.setToolTip(f"{text}: files that could not be used (not in the study tree), images in the tree that "
                      "could not be read or classified, images stored as several identical files (same SOP "
                      "Instance, same bytes: classified and exported once) and different images that claim one SOP "
                      "Instance UID (each kept); click to see them" if copies or clashes or unclassified else "")
    button.setVisible(bool(problems or unclassified or copies or clashes))
