"""The app's DICOM network dialogs against a real Orthanc (tests/orthanc_server.py): Settings → DICOM
nodes with Verify, the Query/Retrieve panel (search, retrieve into the cache folder), and sending the
AI result of an image; all network work in worker threads. Screenshots of the two dialogs are
written when ``CXR_SCREENSHOTS`` names a folder."""
from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pynetdicom")

from PySide6.QtCore import QSettings  # noqa: E402

from cxr_desktop.dicom_nodes_dialog import DicomNodesDialog  # noqa: E402
from cxr_desktop.dicom_settings import DicomSettings  # noqa: E402
from cxr_desktop.pacs_panel import QueryRetrievePanel  # noqa: E402
from cxr_engine.network.dicom_network import DicomNode, send_files  # noqa: E402
from orthanc_server import CLIENT_AE, orthanc, orthanc_binary  # noqa: E402
from test_desktop import card, make_window, private_settings  # noqa: E402,F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "models" / "efficientnet-lite0.json"
WAIT_MS = 180_000  # generous: these tests also run on a 2-core machine shared with training


@pytest.fixture(scope="module")
def server(tmp_path_factory, dicom_dir):
    orthanc_binary()
    with orthanc(tmp_path_factory.mktemp("orthanc")) as (node, settings, _):
        report = send_files(node, sorted(dicom_dir.glob("*.dcm")), settings)
        assert report.failed == []
        yield node, settings


@pytest.fixture
def dicom_settings(tmp_path, server) -> DicomSettings:
    node, network = server
    settings = DicomSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_nodes([DicomNode(node.ae_title, node.host, node.port, name="Test Orthanc")])
    settings.calling_ae = CLIENT_AE
    settings.timeout_s = 10
    settings.cache_folder = tmp_path / "cache"
    return settings


def _screenshot(widget, name: str) -> None:
    folder = os.environ.get("CXR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / name))


def test_settings_store_nodes(tmp_path):
    settings = DicomSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert settings.nodes() == [] and settings.calling_ae == "CXRREADER"  # offline default: no node
    nodes = [DicomNode("PACS", "pacs.local", 11112, tls=True, ca_file="/ca.pem", name="Main PACS"),
             DicomNode("ORTHANC", "127.0.0.1", 4242)]
    settings.set_nodes(nodes)
    assert settings.nodes() == nodes
    with pytest.raises(ValueError, match="AE title"):
        settings.calling_ae = "THIS AE TITLE IS TOO LONG"


def test_nodes_dialog_verifies_in_a_worker(qtbot, dicom_settings, server):
    node, _ = server
    dialog = DicomNodesDialog(dicom_settings)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.node_list.count() == 1 and dialog.ae_title.text() == node.ae_title
    with qtbot.waitSignal(dialog.verified, timeout=WAIT_MS) as signal:
        dialog.verify_current()
    assert signal.args[0].startswith(f"Verified: Test Orthanc {node.ae_title}@127.0.0.1:{node.port} answered C-ECHO")
    _screenshot(dialog, "dicom_nodes_dialog.png")

    dialog.ae_title.setText("WRONGAE")
    dialog.ae_title.editingFinished.emit()
    with qtbot.waitSignal(dialog.verified, timeout=WAIT_MS) as signal:
        dialog.verify_current()
    assert signal.args[0].startswith("Not verified: ") and "is called 'WRONGAE'" in signal.args[0]

    dialog._add()
    assert dialog.node_list.count() == 2
    dialog.ae_title.setText("")
    dialog.ae_title.editingFinished.emit()
    assert "AE title" in dialog.error.text()
    dialog.ae_title.setText("SECOND")
    dialog.ae_title.editingFinished.emit()
    dialog.accept()
    assert [n.ae_title for n in dicom_settings.nodes()] == ["WRONGAE", "SECOND"]


def test_query_retrieve_panel(qtbot, dicom_settings, dicom_dir):
    panel = QueryRetrievePanel(dicom_settings)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS) as signal:
        panel.search()
    studies = {str(pydicom.dcmread(p, force=True, stop_before_pixels=True).StudyInstanceUID)
               for p in dicom_dir.glob("*.dcm")}
    assert signal.args[0] == len(studies) == panel.table.rowCount()
    assert panel.job.status.text() == f"{len(studies)} studies found."
    _screenshot(panel, "query_retrieve_panel.png")

    from cxr_engine.network import dicom_network

    with pytest.MonkeyPatch.context() as patch:  # the node holds more than a search lists: say so
        patch.setattr(dicom_network, "FIND_LIMIT", 2)
        qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=WAIT_MS)
        with qtbot.waitSignal(panel.searched, timeout=WAIT_MS) as signal:
            panel.search()
    assert signal.args[0] == 2 == panel.table.rowCount()
    assert panel.job.status.text().startswith("The first 2 studies are shown; the node holds more: narrow the search")

    film = pydicom.dcmread(dicom_dir / "RG1_J2KI.dcm", stop_before_pixels=True)
    panel.patient_id.setText(str(film.PatientID))
    # `searched` comes before the worker has finished; until then the panel ignores a new request
    qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS) as signal:
        panel.search()
    assert signal.args[0] >= 1
    row = next(i for i, m in enumerate(panel.matches) if m.study_instance_uid == film.StudyInstanceUID)
    panel.table.selectRow(row)
    qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(panel.retrieved, timeout=WAIT_MS) as signal:
        panel.retrieve_selected()
    folder = Path(signal.args[0])
    assert folder == dicom_settings.cache_folder / film.StudyInstanceUID
    received = [pydicom.dcmread(p) for p in folder.glob("*.dcm")]
    assert film.SOPInstanceUID in {ds.SOPInstanceUID for ds in received}
    qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=WAIT_MS)


def test_query_failure_is_told(qtbot, tmp_path):
    from orthanc_server import free_port

    settings = DicomSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set_nodes([DicomNode("NOBODY", "127.0.0.1", free_port())])
    panel = QueryRetrievePanel(settings)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS) as signal:
        panel.search()
    assert signal.args[0] == -1
    assert panel.job.status.text().startswith("Search failed: connection refused")


def test_no_node_no_network(qtbot, tmp_path):
    panel = QueryRetrievePanel(DicomSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(panel)
    assert not panel.search_button.isEnabled() and panel.search() is None
    assert "No DICOM node is configured" in panel.job.status.text()


def test_send_result(qtbot, dicom_settings, dicom_dir, server):
    pytest.importorskip("onnxruntime")
    from cxr_desktop.dicom_send import SendResultsDialog
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.network.dicom_network import StudyQuery, find_studies
    from cxr_engine.outputs.dicom_outputs.writer import default_film
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.model_card import ModelCard

    node, network = server
    card = ModelCard.load(CARD)
    image = read_image(dicom_dir / "RG1_J2KI.dcm")
    heatmap_result = create_classifier(card, backend="onnx", device="cpu").predict_with_heatmap(image)
    dialog = SendResultsDialog(dicom_settings, card, image, heatmap_result, default_film(image, heatmap_result))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.sent, timeout=WAIT_MS) as signal:
        dialog.send()
    report = signal.args[0]
    assert report.failed == [] and len(report.done) == 3
    [study] = find_studies(node, StudyQuery(patient_id=str(image.metadata.patient_id)), network)
    assert study.study_instance_uid == image.metadata.study_instance_uid
    assert set(study.modalities.split("\\")) >= {"SR", "DOC"}

    folder = dicom_settings.cache_folder.parent / "saved"
    dialog.kinds["pdf"].setChecked(False)
    dialog.deidentify.setChecked(True)
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as signal:
        dialog.save_to(folder)
    assert sorted(o.kind for o in signal.args[0]) == ["sc", "sr"]
    for obj in signal.args[0]:
        ds = pydicom.dcmread(obj.path)
        assert ds.PatientIdentityRemoved == "YES" and ds.StudyInstanceUID != image.metadata.study_instance_uid

    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)  # the save's worker has finished
    with qtbot.waitSignal(dialog.status_changed, timeout=WAIT_MS,
                          check_params_cb=lambda text: text.startswith("Not done")) as signal:
        dialog.save_to(Path(image.path).parent)
    assert "holds the input" in signal.args[0] and "source folders are never written" in signal.args[0]


def test_window_retrieves_opens_classifies_and_sends(qtbot, make_window, server, tmp_path, dicom_dir, monkeypatch):
    """From the main window: Query/Retrieve opens the retrieved study in the browser; the image on
    screen, once classified, is sent back with its SC, SR and PDF (and its outbox removed once they are sent)."""
    import shutil

    from cxr_desktop import dicom_send, pacs_controller
    from cxr_desktop.annotation_model import ARROW, Annotation
    from cxr_engine.network.dicom_network import StudyQuery, find_studies
    from test_desktop import wait_classified

    node, network = server
    window = make_window(show=True)
    settings = pacs_controller.dicom_settings(window)
    settings.set_nodes([DicomNode(node.ae_title, node.host, node.port, name="Test Orthanc")])
    settings.calling_ae, settings.timeout_s, settings.cache_folder = CLIENT_AE, 10, tmp_path / "cache"
    assert {"Query/Retrieve…", "Send AI result to a DICOM node…", "DICOM nodes…"} <= {
        a.text() for a in window.menuBar().actions()[0].menu().actions()}

    film = pydicom.dcmread(dicom_dir / "RG1_J2KI.dcm", stop_before_pixels=True)
    panel = pacs_controller.open_query_retrieve(window)
    panel.accession.setText(str(film.AccessionNumber))
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.search()
    assert [m.study_instance_uid for m in panel.matches] == [film.StudyInstanceUID]
    qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=WAIT_MS)  # the search's worker has finished
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        panel.retrieve_selected()
    assert Path(shown.args[0]).parent == settings.cache_folder / film.StudyInstanceUID
    panel.close()

    wait_classified(qtbot, window)
    window.viewer.rotate(90)
    window.annotations.add(window.viewer.image.path, Annotation(ARROW, ((300.0, 400.0), (600.0, 700.0))))
    dialog = pacs_controller.send_result(window)
    assert dialog is not None and dialog.film.shape[0] < dialog.film.shape[1]  # shown turned: a landscape capture
    assert dialog.kinds["gsps"].isChecked() and dialog.shown["inverted"] == window.viewer.display_inverted
    assert dialog.shown["out_of_scope"] == window.result.out_of_scope  # the SR codes no Finding when out of scope
    # The outbox is removed once every object is sent (privacy audit): the test keeps a copy of what was sent.
    copies = tmp_path / "sent"
    copies.mkdir()
    real_send = dicom_send.send_files

    def send_and_keep_a_copy(node, paths, *args, **kwargs):
        for path in paths:
            shutil.copy(path, copies / Path(path).name)
        return real_send(node, paths, *args, **kwargs)

    monkeypatch.setattr(dicom_send, "send_files", send_and_keep_a_copy)
    with qtbot.waitSignal(dialog.sent, timeout=WAIT_MS) as sent:
        dialog.send()
    assert sent.args[0].failed == [] and len(sent.args[0].done) == 4
    assert not any(path.exists() for path in sent.args[0].done)  # the outbox is gone
    assert not (settings.cache_folder / "outbox").exists()
    gsps = pydicom.dcmread(next(copies / p.name for p in sent.args[0].done if p.name.endswith("_gsps.dcm")))
    shaft = gsps.GraphicAnnotationSequence[0].GraphicObjectSequence[0]
    assert [float(v) for v in shaft.GraphicData] == [300.0, 400.0, 600.0, 700.0]
    assert (gsps.ImageRotation, gsps.ImageHorizontalFlip) == (90, "N")  # it reopens turned, as it was shown
    dialog.close()
    [study] = find_studies(node, StudyQuery(accession_number=str(film.AccessionNumber)), network)
    assert set(study.modalities.split("\\")) >= {"SR", "DOC", "PR"}
