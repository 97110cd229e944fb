"""Query/Retrieve: find studies on a configured DICOM node by patient ID, name, study date or
accession number (C-FIND, Study Root) and retrieve the chosen one (C-GET) into the local cache
folder, which the study browser then opens. All network work runs in worker threads with progress
and Cancel; failures are told in the panel's status line."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from cxr_engine.display_text import format_date, format_person_name
from cxr_engine.network.dicom_network import OperationCancelled, StudyMatch, StudyQuery, find_studies, retrieve_study

from .dicom_settings import DicomSettings
from .job_row import JobRow
from .workers import Worker, create_worker, while_alive

MAX_COLUMN_PX = 190
COLUMNS = ("Patient", "Patient ID", "Study date", "Accession", "Description", "Modalities", "Images")


def _retrieve(node, study_uid, folder, settings, progress, should_cancel):
    return retrieve_study(node, study_uid, folder, settings,
                          progress=lambda done, total, name: progress((done, total, name)), cancelled=should_cancel)


def _find(node, query, settings, progress, should_cancel):
    return find_studies(node, query, settings, cancelled=should_cancel)


class QueryRetrievePanel(QDialog):
    """A non-modal window; ``retrieved(folder)`` fires when a study is in the cache folder."""

    retrieved = Signal(object)
    searched = Signal(int)  # number of matches (or -1 after a failure), for tests and the status bar
    status_changed = Signal(str)

    def __init__(self, settings: DicomSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Query/Retrieve — DICOM nodes")
        self.settings = settings
        self.matches: list[StudyMatch] = []
        self._worker: Worker | None = None
        self._closing = False

        self.node_box = QComboBox()
        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("e.g. DOE* (wildcards * and ?)")
        self.accession = QLineEdit()
        self.use_dates = QCheckBox("Study date from")
        self.date_from = QDateEdit(QDate.currentDate().addMonths(-1))
        self.date_to = QDateEdit(QDate.currentDate())
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.use_dates.toggled.connect(self.date_from.setEnabled)
        self.use_dates.toggled.connect(self.date_to.setEnabled)
        dates = QHBoxLayout()
        dates.addWidget(self.use_dates)
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        dates.addStretch(1)
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        form = QFormLayout()
        form.addRow("Node", self.node_box)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Accession number", self.accession)
        form.addRow(dates)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _: self.retrieve_selected())

        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.job = JobRow((self.retrieve_button,))
        self.job.statusChanged.connect(self.status_changed)
        self.job.cancel_button.clicked.connect(self.cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.job)
        self.reload_nodes()
        self.resize(860, 520)

    # ------------------------------------------------------------------ state
    def reload_nodes(self) -> None:
        self.node_box.clear()
        for node in self.settings.nodes():
            self.node_box.addItem(str(node), node)
        if self.node_box.count() == 0:
            self.job.set_status("No DICOM node is configured: add one in Settings → DICOM nodes.")
        self._update_buttons()

    def _busy(self) -> bool:
        return self._worker is not None

    def _update_buttons(self) -> None:
        has_node = self.node_box.count() > 0
        self.search_button.setEnabled(has_node and not self._busy())
        self.retrieve_button.setEnabled(has_node and not self._busy() and bool(self.table.selectedItems()))
        self.job.cancel_button.setEnabled(self._busy())

    def query(self) -> StudyQuery:
        dates = ""
        if self.use_dates.isChecked():
            dates = f"{self.date_from.date().toString('yyyyMMdd')}-{self.date_to.date().toString('yyyyMMdd')}"
        return StudyQuery(patient_id=self.patient_id.text().strip(), patient_name=self.patient_name.text().strip(),
                          study_date=dates, accession_number=self.accession.text().strip())

    # ------------------------------------------------------------------ search
    def search(self) -> Worker | None:
        node = self.node_box.currentData()
        if node is None or self._busy():
            return None
        self.job.set_status(f"Searching {node}…")
        worker = create_worker(_find, node, self.query(), self.settings.network(), _progress=True)
        worker.returned.connect(self._show_matches)
        worker.errored.connect(lambda exc: self._failed("Search", exc))
        return self._run(worker)

    @while_alive
    def _show_matches(self, matches: list[StudyMatch]) -> None:
        self.matches = list(matches)
        self.table.setRowCount(len(self.matches))
        for row, match in enumerate(self.matches):
            values = (format_person_name(match.patient_name), match.patient_id, format_date(match.study_date),
                      match.accession_number, match.study_description, match.modalities.replace("\\", ", "),
                      match.instances)
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        for column in range(len(COLUMNS) - 1):  # long pseudonyms and UIDs must not hide the other columns
            self.table.setColumnWidth(column, min(self.table.columnWidth(column), MAX_COLUMN_PX))
        if self.matches:
            self.table.selectRow(0)
        found = f"{len(self.matches)} {'study' if len(self.matches) == 1 else 'studies'} found."
        if getattr(matches, "more", False):
            found = (f"The first {len(self.matches)} studies are shown; the node holds more: narrow the search "
                     "(patient, date or accession number).")
        self.job.set_status(found)
        self.searched.emit(len(self.matches))

    # ------------------------------------------------------------------ retrieve
    def retrieve_selected(self) -> Worker | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        node = self.node_box.currentData()
        if len(rows) != 1 or node is None or self._busy():
            return None
        match = self.matches[rows.pop()]
        folder = self.settings.cache_folder
        self.job.set_status(f"Retrieving the study of {format_person_name(match.patient_name) or match.patient_id} …")
        worker = create_worker(_retrieve, node, match.study_instance_uid, folder, self.settings.network(),
                               _progress=True)
        worker.progress.connect(self._on_progress)
        worker.returned.connect(lambda report: self._retrieved(report, folder, match))
        worker.errored.connect(lambda exc: self._failed("Retrieve", exc))
        self.job.show_busy()
        return self._run(worker)

    @while_alive
    def _on_progress(self, value) -> None:
        done, total, _ = value
        self.job.set_progress(done, total)
        self.job.set_status(f"Retrieving… {done} image(s) received")

    @while_alive
    def _retrieved(self, report, folder: Path, match: StudyMatch) -> None:
        # Where the files went (a UID with characters a file name cannot hold is written another way).
        study_folder = report.folder or Path(folder) / match.study_instance_uid
        failed = f"; {len(report.failed)} not received: {report.failed[0][1]}" if report.failed else ""
        self.job.set_status(f"{len(report.done)} file(s) retrieved into {study_folder}{failed}")
        if report.done:
            self.retrieved.emit(study_folder)

    # ------------------------------------------------------------------ common
    def _run(self, worker: Worker) -> Worker:
        self._worker = worker
        worker.when_finished(lambda: self._finished(worker))
        worker.start()
        self._update_buttons()
        return worker

    @while_alive
    def _finished(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            self.job.hide_progress()
            self._update_buttons()

    @while_alive
    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, OperationCancelled):
            self.job.set_status(f"{what} cancelled.")
        else:
            self.job.set_status(f"{what} failed: {getattr(exc, 'reason', None) or exc}")
        self.searched.emit(-1)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.job.set_status("Cancelling…")

    def done(self, result: int) -> None:
        self.cancel()
        super().done(result)

    def closeEvent(self, event):
        self.cancel()
        super().closeEvent(event)
