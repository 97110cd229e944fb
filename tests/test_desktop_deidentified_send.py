"""The app's de-identified outputs (privacy audit, 2026-11-30): *File → Send AI result…* with De-identify, the
``--result-json`` record with ``--deidentify``, and the Send outbox.

* Send / Save to folder with De-identify passed the film's identified warnings (the identical copy's paths, a UID
  clash's UID and paths) into the SR, the SC band and the Encapsulated PDF, and named the files after the source
  (``ZZLEAKNAME_chest1_sc.dcm``): the objects now carry the de-identified notes, as the app's de-identified PDF
  does, and a name without the film's;
* ``cxr-desktop PATH --result-json OUT --deidentify`` kept the input path and the original UID in the JSON;
* the Send outbox (``<cache>/outbox/<time>``, identified objects) stayed on disk after a successful send.

Real films from ``dicom_rsna``, copied into a folder and file named after a test patient, with an identical copy
in a second folder; the app's random test model (``test_desktop.card``), offscreen.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
highdicom = pytest.importorskip("highdicom")

from cxr_desktop.settings import SETTINGS_ENV  # noqa: E402
from cxr_engine.network.dicom_network import TransferReport  # noqa: E402
from cxr_engine.reading.copies import copies_note_deidentified  # noqa: E402
from real_films import rsna_film  # noqa: E402
from test_desktop import WAIT_MS, card, make_window, open_and_wait, private_settings, wait_classified  # noqa: E402,F401

FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
NAME, PATIENT_ID = "Zzleakname^Zzgiven", "ZZPID4242"


@pytest.fixture()
def named_study(tmp_path, shared_data) -> Path:
    """``in/Zzleakname/Zzleakname_chest.dcm`` (a real film given the test patient) and an identical copy in
    ``in/copy_Zzleakname/``: the app lists it once, with a note naming the copy's path."""
    ds = pydicom.dcmread(rsna_film(shared_data, FILM))
    ds.PatientName, ds.PatientID = NAME, PATIENT_ID
    folder = tmp_path / "in"
    (folder / "Zzleakname").mkdir(parents=True)
    (folder / "copy_Zzleakname").mkdir()
    ds.save_as(folder / "Zzleakname" / "Zzleakname_chest.dcm")
    shutil.copy(folder / "Zzleakname" / "Zzleakname_chest.dcm", folder / "copy_Zzleakname" / "Zzleakname_copy.dcm")
    return folder


def _sr_warnings(path) -> list[str]:
    group = highdicom.sr.srread(path).content.get_image_measurement_groups()[0]
    return [item.TextValue for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning == "Suitability warning"]


def test_deidentified_save_carries_the_deidentified_notes_and_not_the_films_name(qtbot, make_window, named_study,
                                                                                 tmp_path):
    from pypdf import PdfReader

    from cxr_desktop import pacs_controller
    from cxr_engine.outputs.dicom_outputs.encapsulated_pdf import pdf_bytes

    window = make_window(show=True)
    shown = open_and_wait(qtbot, window, named_study)
    wait_classified(qtbot, window)
    assert any(str(named_study) in note for note in window.result.film_warnings)  # the identified note names paths
    uid = str(pydicom.dcmread(shown, stop_before_pixels=True).SOPInstanceUID)
    dialog = pacs_controller.send_result(window)
    assert dialog is not None
    dialog.deidentify.setChecked(True)
    out = tmp_path / "out"
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        dialog.save_to(out)
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
    objects = saved.args[0]
    assert sorted(o.kind for o in objects) == ["pdf", "sc", "sr"]
    for obj in objects:
        assert "zzleakname" not in obj.path.name.lower() and "chest" not in obj.path.name, obj.path.name
        ds = pydicom.dcmread(obj.path)
        text = " | ".join(str(e.value) for e in ds.iterall() if e.VR not in ("SQ", "OB", "OW", "UN"))
        if obj.kind == "pdf":
            text += "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf_bytes(ds))).pages)
        for secret in (str(tmp_path), "Zzleakname", "ZZPID4242", uid):
            assert secret.lower() not in text.lower(), f"{obj.kind}: {secret!r}"
    sr = next(o.path for o in objects if o.kind == "sr")
    assert copies_note_deidentified(1) in _sr_warnings(sr)  # the note is kept, as the de-identified PDF gives it
    dialog.close()


def test_result_json_is_deidentified_with_deidentify(named_study, card, tmp_path, monkeypatch):
    from cxr_desktop.app import main

    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "s.ini"))
    out = tmp_path / "out" / "result.json"
    assert main([str(named_study), "--model", str(card.path), "--result-json", str(out), "--deidentify",
                 "--timeout", "120"]) == 0
    text = out.read_text(encoding="utf-8")
    result = json.loads(text)
    assert result["path"] == "image 1" and result["probabilities"] is not None
    assert copies_note_deidentified(1) in result["warnings"]
    first = next(named_study.rglob("*.dcm"))
    for secret in (str(tmp_path), "Zzleakname", str(pydicom.dcmread(first, stop_before_pixels=True).SOPInstanceUID)):
        assert secret.lower() not in text.lower(), secret


@pytest.mark.parametrize("outcome", ["sent", "refused", "unreachable"])
def test_the_send_outbox_is_removed_after_a_successful_send_only(tmp_path, monkeypatch, outcome):
    """The outbox holds identified objects: gone once all are sent; kept, and named, when a send fails."""
    from cxr_desktop import dicom_send
    from cxr_engine.network.dicom_network import DicomNetworkError

    outbox = tmp_path / "cache" / "outbox" / "20261130-120000"

    def write_only(folder, *args, **kwargs):
        Path(folder).mkdir(parents=True)
        path = Path(folder) / "x_sc.dcm"
        path.write_bytes(b"DICM")
        return [type("Written", (), {"path": path})()]

    def send_files(node, paths, network, progress=None, cancelled=None):
        if outcome == "unreachable":
            raise DicomNetworkError("TEST@127.0.0.1:4999", "connection refused")
        return TransferReport(done=list(paths) if outcome == "sent" else [],
                              failed=[] if outcome == "sent" else [(str(paths[0]), "refused (A700)")])

    monkeypatch.setattr(dicom_send, "write_only", write_only)
    monkeypatch.setattr(dicom_send, "send_files", send_files)
    call = (None, None, outbox, None, None, None, None, ("sc",), False, {}, lambda value: None, lambda: False)
    if outcome == "unreachable":
        with pytest.raises(dicom_send.OutboxKept) as kept:
            dicom_send.write_and_send(*call)
        assert str(outbox) in kept.value.reason and "connection refused" in kept.value.reason
        assert (outbox / "x_sc.dcm").exists()
        return
    report = dicom_send.write_and_send(*call)
    if outcome == "sent":
        assert not outbox.exists() and not outbox.parent.exists()
    else:
        assert (outbox / "x_sc.dcm").exists() and report.folder == outbox


def _fake_outbox_calls(monkeypatch, outbox: Path, *, write_fails_after: int | None = None, send=None,
                       cancel_after_write: bool = False):
    """``write_and_send``'s arguments with ``write_only`` writing two objects (failing, after
    ``write_fails_after`` of them, with the engine's write error) and ``send`` standing for ``send_files``."""
    from cxr_desktop import dicom_send
    from cxr_engine.outputs.dicom_outputs import DicomOutputError

    def write_only(folder, *args, **kwargs):
        Path(folder).mkdir(parents=True)
        written = []
        for kind in ("sc", "sr"):
            if write_fails_after is not None and len(written) == write_fails_after:
                raise DicomOutputError(Path("film.dcm"), f"cannot write to {folder} (No space left on device)")
            path = Path(folder) / f"x_{kind}.dcm"
            path.write_bytes(b"DICM")
            written.append(type("Written", (), {"path": path})())
        return written

    def send_files(node, paths, network, progress=None, cancelled=None):
        if send is not None:
            return send(paths, cancelled)
        return TransferReport(done=list(paths), failed=[])

    monkeypatch.setattr(dicom_send, "write_only", write_only)
    monkeypatch.setattr(dicom_send, "send_files", send_files)

    def should_cancel():
        return cancel_after_write and any(outbox.glob("*.dcm"))

    return (None, None, outbox, None, None, None, None, ("sc", "sr"), False, {}, lambda value: None, should_cancel)


@pytest.mark.parametrize("written", [0, 1])
def test_a_failed_write_removes_the_partial_outbox_and_says_the_write_error(tmp_path, monkeypatch, written):
    """Writing failed part-way (one object of two on disk): an incomplete set is not kept 'to send again'; the
    reader gets the write error, and nothing is left in the outbox."""
    from cxr_desktop import dicom_send
    from cxr_engine.outputs.dicom_outputs import DicomOutputError

    outbox = tmp_path / "cache" / "outbox" / "20261130-120000"
    sent = []
    call = _fake_outbox_calls(monkeypatch, outbox, write_fails_after=written,
                              send=lambda paths, cancelled: sent.append(paths))
    with pytest.raises(DicomOutputError) as failed:
        dicom_send.write_and_send(*call)
    assert not isinstance(failed.value, dicom_send.OutboxKept)
    assert "No space left on device" in str(failed.value) and "to send again" not in str(failed.value)
    assert not outbox.exists() and not outbox.parent.exists() and sent == []


@pytest.mark.parametrize("when", ["after writing", "while sending"])
def test_cancelling_a_send_removes_the_outbox(tmp_path, monkeypatch, when):
    from cxr_desktop import dicom_send
    from cxr_engine.network.dicom_network import OperationCancelled

    outbox = tmp_path / "cache" / "outbox" / "20261130-120000"
    sent = []

    def send(paths, cancelled):
        sent.append(paths)
        raise OperationCancelled("cancelled after 1 of 2 objects")

    call = _fake_outbox_calls(monkeypatch, outbox, send=send, cancel_after_write=when == "after writing")
    with pytest.raises(OperationCancelled):
        dicom_send.write_and_send(*call)
    assert not outbox.exists() and not outbox.parent.exists()
    assert (sent == []) == (when == "after writing")  # cancelled before sending: nothing was offered to the node


def _kind(path) -> str:
    """``sc``, ``sr`` or ``pdf`` of an output named ``<stem>_<kind>.dcm``."""
    return Path(path).stem.rsplit("_", 1)[1]


def _node_settings(window, tmp_path, *nodes):
    """The window's DICOM settings with ``nodes`` (AE titles; loopback, never reached: ``send_files`` is replaced)
    and a cache folder of the test's own."""
    from cxr_desktop.dicom_settings import DicomSettings
    from cxr_engine.network.dicom_network import DicomNode

    settings = DicomSettings(window.settings.store)
    settings.set_nodes([DicomNode(title, "127.0.0.1", 104 + number) for number, title in enumerate(nodes)])
    settings.cache_folder = tmp_path / "cache"
    return settings


def test_two_deidentified_sends_of_one_study_are_one_pseudonymous_study(qtbot, make_window, named_study, tmp_path,
                                                                        monkeypatch):
    """Each Send made its own writer, so its own de-identifier with a new random salt: one study sent twice became
    two pseudonymous studies of two pseudonymous patients (tester finding). Every de-identified Send and Save to
    folder of the app session now shares one (docs/dicom_outputs.md: the same new UID for the same old one within a
    session)."""
    from cxr_desktop import dicom_send, pacs_controller

    window = make_window(show=True)
    open_and_wait(qtbot, window, named_study)
    wait_classified(qtbot, window)
    _node_settings(window, tmp_path, "PACS")
    received = []

    def send_files(node, paths, network, progress=None, cancelled=None):
        received.append({_kind(p): pydicom.dcmread(p, stop_before_pixels=True) for p in paths})
        return TransferReport(done=list(paths), failed=[])

    monkeypatch.setattr(dicom_send, "send_files", send_files)
    for _ in range(2):
        dialog = pacs_controller.send_result(window)
        dialog.deidentify.setChecked(True)
        with qtbot.waitSignal(dialog.sent, timeout=WAIT_MS):
            dialog.send()
        qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
        dialog.close()
    dialog = pacs_controller.send_result(window)
    dialog.deidentify.setChecked(True)
    with qtbot.waitSignal(dialog.saved, timeout=WAIT_MS) as saved:
        dialog.save_to(tmp_path / "saved")
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=WAIT_MS)
    dialog.close()
    received.append({o.kind: pydicom.dcmread(o.path, stop_before_pixels=True) for o in saved.args[0]})

    assert len(received) == 3 and all(len(objects) == 3 for objects in received)
    datasets = [ds for objects in received for ds in objects.values()]
    assert len({str(ds.StudyInstanceUID) for ds in datasets}) == 1
    assert len({(str(ds.PatientID), str(ds.PatientName)) for ds in datasets}) == 1
    assert str(datasets[0].PatientID).startswith("ANON-") and datasets[0].PatientIdentityRemoved == "YES"
    # the same objects each time: a PACS stores them once
    assert len({tuple(sorted(str(ds.SOPInstanceUID) for ds in objects.values())) for objects in received}) == 1


def test_two_sends_in_the_same_second_keep_their_own_outboxes(qtbot, make_window, named_study, tmp_path,
                                                             monkeypatch):
    """The outbox was named by the second: two sends in one second shared it, and the one that succeeded removed
    the objects the failed one said it kept to send again (tester finding). Each send has its own now."""
    import re
    import threading
    from types import SimpleNamespace

    from cxr_desktop import dicom_send, pacs_controller
    from cxr_engine.network.dicom_network import DicomNetworkError

    window = make_window(show=True)
    open_and_wait(qtbot, window, named_study)
    wait_classified(qtbot, window)
    _node_settings(window, tmp_path, "DOWN", "UP")
    monkeypatch.setattr(dicom_send, "time", SimpleNamespace(strftime=lambda fmt: "20261201-120000"))  # one second
    refused = threading.Event()
    sent_from = []

    def send_files(node, paths, network, progress=None, cancelled=None):
        if node.ae_title == "DOWN":
            refused.set()
            raise DicomNetworkError(node, "connection refused: nothing listens on port 104")
        assert refused.wait(WAIT_MS / 1000)  # the failed send has said where it keeps its objects
        sent_from.append(Path(paths[0]).parent)
        return TransferReport(done=list(paths), failed=[])

    monkeypatch.setattr(dicom_send, "send_files", send_files)
    dialogs = []
    for index in (0, 1):
        dialog = pacs_controller.send_result(window)
        dialog.node_box.setCurrentIndex(index)
        dialogs.append(dialog)
    for dialog in dialogs:
        dialog.send()
    qtbot.waitUntil(lambda: all(d._worker is None for d in dialogs), timeout=WAIT_MS)
    status = dialogs[0].job.status.text()
    kept = re.search(r"the objects are kept in (.+) to send again", status)
    assert kept, status
    kept = Path(kept.group(1))
    assert kept.parent == tmp_path / "cache" / "outbox" and kept.name.startswith("20261201-120000")
    assert sorted(_kind(p) for p in kept.iterdir()) == ["pdf", "sc", "sr"]
    assert dialogs[1].job.status.text().startswith("Sent 3 object(s)")
    assert sent_from and sent_from[0] != kept and not sent_from[0].exists()  # the sent one's own outbox, removed
    for dialog in dialogs:
        dialog.close()
