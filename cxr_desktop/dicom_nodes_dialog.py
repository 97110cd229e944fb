"""Settings → DICOM nodes: the PACS and other DICOM nodes the app may talk to (AE title, host, port,
TLS), this app's own AE title, the network timeout and the retrieve folder; "Verify" sends a C-ECHO
in a worker thread and says what happened."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from cxr_engine.network.dicom_network import DicomNode, NetworkSettings, verify

from .dicom_settings import DicomSettings
from .workers import Worker, create_worker, while_alive

NEW_NODE = DicomNode("PACS", "localhost", 104, name="New node")


def _echo(node: DicomNode, settings: NetworkSettings) -> float:
    """Worker: C-ECHO ``node``; the round trip in milliseconds."""
    started = time.monotonic()
    verify(node, settings)
    return (time.monotonic() - started) * 1000.0


def _label(node: DicomNode) -> str:
    return f"{node.name or node.ae_title} ({node.ae_title})" + ("  TLS" if node.tls else "")


class DicomNodesDialog(QDialog):
    """Edits the node list and this app's network settings; saved on OK only."""

    verified = Signal(str)  # the status line after each Verify (tests wait for it)

    def __init__(self, settings: DicomSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings — DICOM nodes")
        self.settings = settings
        self._nodes: list[DicomNode] = settings.nodes()
        self._row = -1
        self._worker: Worker | None = None
        self._closing = False

        self.node_list = QListWidget()
        add, remove = QPushButton("Add"), QPushButton("Remove")
        add.clicked.connect(self._add)
        remove.clicked.connect(self._remove)
        left = QVBoxLayout()
        left.addWidget(QLabel("Nodes"))
        left.addWidget(self.node_list)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        left.addLayout(buttons)

        self.name = QLineEdit()
        self.ae_title = QLineEdit()
        self.ae_title.setMaxLength(16)
        self.host = QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.tls = QCheckBox("Use TLS (DICOM TLS profile; verifies the node's certificate)")
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("system certificates")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file)
        ca_row.addWidget(browse)
        self.verify_button = QPushButton("Verify (C-ECHO)")
        self.verify_button.clicked.connect(self.verify_current)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(3 * self.status.fontMetrics().lineSpacing())
        node_box = QGroupBox("Node")
        form = QFormLayout(node_box)
        form.addRow("Name", self.name)
        form.addRow("AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("", self.tls)
        form.addRow("CA certificate", ca_row)
        form.addRow("", self.verify_button)
        form.addRow(self.status)

        self.calling_ae = QLineEdit(settings.calling_ae)
        self.calling_ae.setMaxLength(16)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 600)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(settings.timeout_s)
        self.cache = QLineEdit(str(settings.cache_folder))
        app_box = QGroupBox("This app")
        app_form = QFormLayout(app_box)
        app_form.addRow("AE title", self.calling_ae)
        app_form.addRow("Timeout", self.timeout)
        app_form.addRow("Retrieved studies go to", self.cache)
        note = QLabel("Nothing is sent or fetched unless you ask (Query/Retrieve, Send). With no node "
                      "configured the app never uses the network.")
        note.setWordWrap(True)

        right = QVBoxLayout()
        right.addWidget(node_box)
        right.addWidget(app_box)
        right.addWidget(note)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(right, 3)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #B91C1C")
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addLayout(body)
        outer.addWidget(self.error)
        outer.addWidget(box)

        for widget in (self.name, self.ae_title, self.host, self.ca_file):
            widget.editingFinished.connect(self._store_current)
        self.port.valueChanged.connect(lambda _: self._store_current())
        self.tls.toggled.connect(lambda _: self._store_current())
        self.node_list.currentRowChanged.connect(self._show_row)
        self._refill(0)
        self.resize(780, 480)

    # ------------------------------------------------------------------ list
    def nodes(self) -> list[DicomNode]:
        return list(self._nodes)

    def _refill(self, row: int) -> None:
        self.node_list.blockSignals(True)
        self.node_list.clear()
        for node in self._nodes:
            self.node_list.addItem(_label(node))
        self.node_list.blockSignals(False)
        self._row = -1
        if self._nodes:
            self.node_list.setCurrentRow(min(max(row, 0), len(self._nodes) - 1))
        self._show_row(self.node_list.currentRow())

    def _show_row(self, row: int) -> None:
        self._row = row
        editing = 0 <= row < len(self._nodes)
        for widget in (self.name, self.ae_title, self.host, self.port, self.tls, self.ca_file, self.verify_button):
            widget.setEnabled(editing)
        self.status.setText("" if editing else "Add a node to query, retrieve from or send to.")
        if not editing:
            return
        node = self._nodes[row]
        for widget, value in ((self.name, node.name), (self.ae_title, node.ae_title), (self.host, node.host),
                              (self.ca_file, node.ca_file)):
            widget.blockSignals(True)
            widget.setText(value)
            widget.blockSignals(False)
        for widget, setter, value in ((self.port, self.port.setValue, node.port), (self.tls, self.tls.setChecked, node.tls)):
            widget.blockSignals(True)
            setter(value)
            widget.blockSignals(False)

    def form_node(self) -> DicomNode:
        """The node the form describes; ``ValueError`` naming the bad field."""
        return DicomNode(ae_title=self.ae_title.text().strip(), host=self.host.text().strip(), port=self.port.value(),
                         tls=self.tls.isChecked(), ca_file=self.ca_file.text().strip(), name=self.name.text().strip())

    def _store_current(self) -> None:
        if not 0 <= self._row < len(self._nodes):
            return
        try:
            node = self.form_node()
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self._nodes[self._row] = node
        item = self.node_list.item(self._row)
        if item is not None:
            item.setText(_label(node))

    def _add(self) -> None:
        self._nodes.append(NEW_NODE)
        self._refill(len(self._nodes) - 1)
        self.name.setFocus()

    def _remove(self) -> None:
        if 0 <= self._row < len(self._nodes):
            del self._nodes[self._row]
            self._refill(self._row)

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA certificate", "", "Certificates (*.pem *.crt);;All files (*)")
        if path:
            self.ca_file.setText(path)
            self._store_current()

    # ------------------------------------------------------------------ verify
    def network_settings(self) -> NetworkSettings:
        return NetworkSettings(self.calling_ae.text().strip() or self.settings.calling_ae, self.timeout.value())

    def verify_current(self) -> Worker | None:
        """C-ECHO the node in the form, in a worker; the status line tells the outcome."""
        try:
            node = self.form_node()
            settings = self.network_settings()
            DicomNode(settings.calling_ae, "localhost", 1)
        except ValueError as exc:
            self._verified(f"Not verified: {exc}")
            return None
        self.verify_button.setEnabled(False)
        self.status.setText(f"Verifying {node}…")
        worker = create_worker(_echo, node, settings)
        worker.returned.connect(lambda ms: self._verified(f"Verified: {node} answered C-ECHO in {ms:.0f} ms"))
        worker.errored.connect(lambda exc: self._verified(f"Not verified: {getattr(exc, 'reason', exc)}"))
        self._worker = worker.start()
        return worker

    @while_alive
    def _verified(self, text: str) -> None:
        self.verify_button.setEnabled(0 <= self._row < len(self._nodes))
        self.status.setText(text)
        self.verified.emit(text)

    # ------------------------------------------------------------------ save
    def accept(self) -> None:
        self._store_current()
        try:
            DicomNode(self.calling_ae.text().strip(), "localhost", 1)
        except ValueError as exc:
            self.error.setText(f"This app's AE title: {exc}")
            return
        self.settings.set_nodes(self._nodes)
        self.settings.calling_ae = self.calling_ae.text().strip()
        self.settings.timeout_s = self.timeout.value()
        if self.cache.text().strip():
            self.settings.cache_folder = Path(self.cache.text().strip())
        super().accept()

    def done(self, result: int) -> None:
        self._closing = True
        if self._worker is not None:
            self._worker.quit()
        super().done(result)
