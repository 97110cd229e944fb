"""The DICOM network client (cxr_engine.network.dicom_network) against a real Orthanc started by the test on
loopback, seeded with the shared DICOM files: Verify, refusals told plainly, C-FIND by each key,
C-GET into a cache folder, and the round trip query → retrieve → classify → send SC + SR + PDF →
query again and read the stored objects back. Also ``cxr-classify --send``."""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("pynetdicom")

from cxr_engine.network.dicom_network import (  # noqa: E402
    DicomNetworkError,
    DicomNode,
    NetworkSettings,
    OperationCancelled,
    StudyQuery,
    find_studies,
    retrieve_study,
    send_files,
    verify,
)
from orthanc_server import CLIENT_AE, orthanc, orthanc_binary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "models" / "efficientnet-lite0.json"
RSNA_FILM = "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data):
    """A running Orthanc holding the shared DICOM files (dicom/ and one of dicom_rsna/)."""
    orthanc_binary()
    seed = sorted((shared_data / "dicom").glob("*.dcm")) + [shared_data / "dicom_rsna" / RSNA_FILM]
    with orthanc(tmp_path_factory.mktemp("orthanc")) as (node, settings, _):
        report = send_files(node, seed, settings)
        assert report.failed == [] and len(report.done) == len(seed)
        yield node, settings, seed


def _header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, force=True, stop_before_pixels=True)


class TestRefusals:
    def test_verify(self, server):
        node, settings, _ = server
        verify(node, settings)

    def test_ae_titles_typed_with_spaces_reach_the_node(self, server):
        """Leading and trailing spaces of an AE title are not significant (PS3.5 6.2): a node and this app's title
        typed with them associate as the titles without them (they were sent as typed)."""
        node, settings, _ = server
        padded = DicomNode(f"  {node.ae_title} ", node.host, node.port)
        assert padded.ae_title == node.ae_title
        verify(padded, NetworkSettings(f" {settings.calling_ae}  ", settings.timeout_s))

    def test_wrong_called_ae_is_refused(self, server):
        node, settings, _ = server
        wrong = DicomNode("NOTORTHANC", node.host, node.port)
        with pytest.raises(DicomNetworkError, match="knows this app's AE title 'CXRTEST' and is called 'NOTORTHANC'"):
            verify(wrong, settings)

    def test_nothing_listening(self, server):
        from orthanc_server import free_port

        _, settings, _ = server
        with pytest.raises(DicomNetworkError, match="connection refused: nothing listens on port"):
            verify(DicomNode("ANY", "127.0.0.1", free_port()), settings)

    def test_unknown_host(self, server):
        _, settings, _ = server
        with pytest.raises(DicomNetworkError, match="host 'no-such-host.invalid' not found"):
            verify(DicomNode("ANY", "no-such-host.invalid", 104), settings)

    def test_tls_to_a_plain_node(self, server):
        import dataclasses

        node, settings, _ = server
        with pytest.raises(DicomNetworkError, match="TLS handshake failed"):
            verify(dataclasses.replace(node, tls=True), settings)

    def test_unknown_calling_ae_may_not_query(self, server):
        node, _, _ = server
        with pytest.raises(DicomNetworkError, match="STRANGER"):
            find_studies(node, StudyQuery(), NetworkSettings("STRANGER", timeout_s=3))

    def test_cancel_aborts(self, server, tmp_path):
        node, settings, _ = server
        with pytest.raises(OperationCancelled):
            find_studies(node, StudyQuery(), settings, cancelled=lambda: True)

    def test_node_parsing(self):
        assert DicomNode.parse("PACS@10.0.0.5:104") == DicomNode("PACS", "10.0.0.5", 104)
        for bad in ("PACS@host", "@host:104", "WAY_TOO_LONG_AE_TITLE@h:1", "A@h:70000"):
            with pytest.raises(ValueError):
                DicomNode.parse(bad)


class TestQuery:
    def test_every_seeded_study_is_found(self, server):
        node, settings, seed = server
        found = {m.study_instance_uid for m in find_studies(node, StudyQuery(), settings)}
        assert found == {str(_header(p).StudyInstanceUID) for p in seed}

    def test_by_patient_id_name_date_and_accession(self, server):
        node, settings, seed = server
        film = next(_header(p) for p in seed if _header(p).get("AccessionNumber") and _header(p).get("StudyDate"))
        study = str(film.StudyInstanceUID)
        for query in (StudyQuery(patient_id=str(film.PatientID)),
                      StudyQuery(patient_name=str(film.PatientName)[:4] + "*"),
                      StudyQuery(study_date=f"{film.StudyDate}-{film.StudyDate}"),
                      StudyQuery(accession_number=str(film.AccessionNumber))):
            matches = find_studies(node, query, settings)
            assert study in {m.study_instance_uid for m in matches}, query
        none = find_studies(node, StudyQuery(patient_id="NO-SUCH-PATIENT"), settings)
        assert none == []


def test_round_trip(server, tmp_path):
    """Query → retrieve (C-GET) → classify → send SC + SR + PDF → query again → read them back."""
    pytest.importorskip("onnxruntime")
    import highdicom

    from cxr_engine.models.backends import create_classifier
    from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.model_card import ModelCard

    node, settings, seed = server
    source = _header(next(p for p in seed if p.name == RSNA_FILM))
    study = str(source.StudyInstanceUID)
    [match] = find_studies(node, StudyQuery(patient_id=str(source.PatientID)), settings)
    assert match.study_instance_uid == study and match.instances == "1"

    progress = []
    cache = tmp_path / "cache"
    retrieved = retrieve_study(node, study, cache, settings, progress=lambda *a: progress.append(a))
    assert retrieved.failed == [] and len(retrieved.done) == 1 and progress
    film = retrieved.done[0]
    assert film.parent == cache / study and _header(film).SOPInstanceUID == source.SOPInstanceUID

    card = ModelCard.load(CARD)
    classifier = create_classifier(card, backend="onnx", device="cpu")
    image = read_image(film)
    heatmap_result = classifier.predict_with_heatmap(image)
    written = DicomOutputWriter(tmp_path / "outputs", card).write(image, heatmap_result)
    sent = send_files(node, [o.path for o in written], settings)
    assert sent.failed == [] and len(sent.done) == 3

    [after] = find_studies(node, StudyQuery(patient_id=str(source.PatientID)), settings)
    assert after.study_instance_uid == study and after.instances == "4"
    assert set(after.modalities.split("\\")) == {str(source.Modality), "OT", "SR", "DOC"}  # the SC is OT

    again = retrieve_study(node, study, tmp_path / "again", settings)
    stored = {str(_header(p).SOPInstanceUID): p for p in again.done}
    assert set(stored) == {str(source.SOPInstanceUID)} | {o.sop_instance_uid for o in written}
    by_kind = {o.kind: stored[o.sop_instance_uid] for o in written}
    for path in by_kind.values():
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == study and ds.PatientID == source.PatientID
    sc = pydicom.dcmread(by_kind["sc"])
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.pixel_array.shape[2] == 3
    group = highdicom.sr.srread(by_kind["sr"]).content.get_image_measurement_groups()[0]
    probabilities = {m.name.value: m.value for m in group.get_measurements()}
    assert probabilities == pytest.approx({f"CXR-P-{c}": heatmap_result.prediction.probability(c) for c in card.classes})
    assert group.source_images[0].referenced_sop_instance_uid == source.SOPInstanceUID
    pdf = pydicom.dcmread(by_kind["pdf"])
    assert bytes(pdf.EncapsulatedDocument).startswith(b"%PDF-")


def test_cli_send_deidentified(server, tmp_path, dicom_dir):
    """``cxr-classify --send --deidentify``: the outputs reach the node as a new, pseudonymous study."""
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import main

    node, settings, _ = server
    before = {m.study_instance_uid for m in find_studies(node, StudyQuery(), settings)}
    film = dicom_dir / "CR-MONO1-10-chest.dcm"
    code = main([str(film), "--model", str(CARD), "--backend", "onnx", "--csv", str(tmp_path / "r.csv"), "-q",
                 "--deidentify", "--send", f"{node.ae_title}@{node.host}:{node.port}", "--ae-title", CLIENT_AE])
    assert code == 0
    new = [m for m in find_studies(node, StudyQuery(), settings) if m.study_instance_uid not in before]
    assert len(new) == 1
    assert new[0].patient_id.startswith("ANON-") and new[0].instances == "3"
    assert new[0].study_instance_uid != str(_header(film).StudyInstanceUID)


def _no_classifier(monkeypatch):
    import cxr_engine.models.backends

    def refuse(*args, **kwargs):
        raise AssertionError("a film was classified before the --send node was verified")

    monkeypatch.setattr(cxr_engine.models.backends, "create_classifier", refuse)


def test_cli_send_refused_is_told_before_classifying(server, tmp_path, dicom_dir, capsys, monkeypatch):
    from cxr_engine.cli import EXIT_USAGE, main

    node, _, _ = server
    _no_classifier(monkeypatch)
    code = main([str(dicom_dir / "CR-MONO1-10-chest.dcm"), "--model", str(CARD), "--backend", "onnx", "-q",
                 "--csv", str(tmp_path / "r.csv"), "--send", f"WRONGAE@{node.host}:{node.port}",
                 "--ae-title", CLIENT_AE])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "knows this app's AE title 'CXRTEST' and is called 'WRONGAE'" in err
    assert "checked with Verify (C-ECHO) before classifying; nothing was classified" in err
    assert not (tmp_path / "r.csv").exists()


def test_cli_send_to_a_node_that_is_not_there_stops_before_classifying(tmp_path, dicom_dir, capsys, monkeypatch):
    """No server listens on the port: one line naming the node, exit 2, no film classified (it used to
    be found only after the whole batch, with exit 1)."""
    import socket

    from cxr_engine.cli import EXIT_USAGE, build_parser, main

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _no_classifier(monkeypatch)
    code = main([str(dicom_dir / "CR-MONO1-10-chest.dcm"), "--model", str(CARD), "-q", "--network-timeout", "5",
                 "--csv", str(tmp_path / "r.csv"), "--send", f"NOBODY@127.0.0.1:{port}"])
    assert code == EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cxr-classify: --send NOBODY@127.0.0.1:{port}: "), lines
    assert not (tmp_path / "r.csv").exists()
    assert "does not answer Verify (C-ECHO)" in " ".join(build_parser().format_help().split())


def test_cli_send_twice_duplicates_nothing(server, tmp_path, dicom_dir):
    """A rerun of the same film and model makes the same SOP Instance UIDs: sent again, the node holds
    the three AI objects once (tester finding 15: every run used to add three more)."""
    pytest.importorskip("onnxruntime")
    from cxr_engine.cli import main

    node, settings, _ = server
    film = dicom_dir / "RG1_J2KI.dcm"
    study = str(_header(film).StudyInstanceUID)

    def instances() -> int:
        [match] = [m for m in find_studies(node, StudyQuery(), settings) if m.study_instance_uid == study]
        return int(match.instances)

    before = instances()
    for run in ("first", "second"):
        assert main([str(film), "--model", str(CARD), "--backend", "onnx", "-q", "--csv", str(tmp_path / f"{run}.csv"),
                     "--send", f"{node.ae_title}@{node.host}:{node.port}", "--ae-title", CLIENT_AE]) == 0
        assert instances() == before + 3, run


def test_tls(tmp_path, dicom_dir):
    """A node that speaks DICOM TLS only: verified, queried and sent to with its certificate trusted;
    without TLS, or without trusting its certificate, the failure is told."""
    import dataclasses

    orthanc_binary()
    with orthanc(tmp_path / "orthanc", tls=True) as (node, settings, _):
        verify(node, settings)
        sent = send_files(node, [dicom_dir / "RG1_J2KI.dcm"], settings)
        assert sent.failed == [] and len(sent.done) == 1
        assert len(find_studies(node, StudyQuery(), settings)) == 1
        with pytest.raises(DicomNetworkError, match="association failed"):
            verify(dataclasses.replace(node, tls=False), NetworkSettings(settings.calling_ae, timeout_s=3))
        with pytest.raises(DicomNetworkError, match="TLS certificate is not trusted .*self-signed"):
            verify(dataclasses.replace(node, ca_file=""), settings)
