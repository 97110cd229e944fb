"""The DICOM network client against nodes that are not Orthanc's defaults, each a real server started by the
test on loopback: dcmtk's ``storescp`` taking Implicit VR Little Endian only (every storage node must take it,
some take nothing else), one that takes no storage at all, one that answers slowly or ends the association
(the message says which), a send cancelled while the node is silent, and an Orthanc study holding a radiation
dose report and an object no client offers (the films still come, the rest is named)."""
from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
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
    store_syntaxes,
)
from orthanc_server import free_port, orthanc, stop_server  # noqa: E402

STORESCP = "/usr/bin/storescp"  # dcmtk's (pynetdicom installs a command of the same name in the venv)
SETTINGS = NetworkSettings(calling_ae="CXRTEST", timeout_s=10)


def _need_storescp() -> str:
    if not Path(STORESCP).exists():
        pytest.skip("dcmtk's storescp is not installed (Debian: apt-get install dcmtk; .ci/run installs it)")
    return STORESCP


@contextmanager
def storescp(folder: Path, *options: str):
    """dcmtk's storescp on a free loopback port, storing into ``folder/in``; yields its node."""
    binary = _need_storescp()
    (folder / "in").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (folder / "storescp.log").open("w")
    process = subprocess.Popen([binary, "-aet", "SCP", "-od", str(folder / "in"), *options, str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    node = DicomNode("SCP", "127.0.0.1", port)
    try:
        deadline = time.monotonic() + 20
        while True:  # listening?
            try:
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"storescp did not start: {(folder / 'storescp.log').read_text()[-1000:]}")
                time.sleep(0.1)
        yield node
    finally:
        stop_server(process, 10)
        log.close()


def _explicit_copy(source: Path, out: Path) -> Path:
    """``source`` re-encoded as Explicit VR Little Endian (the syntax this app writes its outputs in)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(source, force=True)
    ds.decompress() if ds.file_meta.TransferSyntaxUID.is_compressed else None
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out


def test_what_a_send_offers():
    from pydicom import uid

    assert store_syntaxes(uid.ExplicitVRLittleEndian) == [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]
    assert store_syntaxes(uid.ImplicitVRLittleEndian) == [uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian]
    assert store_syntaxes(uid.JPEGLSLossless) == [uid.JPEGLSLossless]  # a compressed file goes as it is


def test_a_node_taking_implicit_vr_only_gets_every_uncompressed_file(tmp_path, dicom_dir):
    """It got nothing: each file was offered only in its own syntax, and the message blamed the AE titles."""
    film = _explicit_copy(dicom_dir / "RG1_JLSN.dcm", tmp_path / "films" / "film.dcm")
    compressed = dicom_dir / "RG1_JLSN.dcm"  # JPEG-LS (near-lossless): cannot be re-encoded on the way
    with storescp(tmp_path, "+xi") as node:
        report = send_files(node, [film, compressed], SETTINGS)
    assert report.done == [film]
    ((path, reason),) = report.failed
    assert path == str(compressed)
    assert reason == ("the node accepts Computed Radiography Image Storage only in Implicit VR Little Endian, not in "
                      "JPEG-LS Lossy (Near-Lossless) Image Compression"), reason
    (received,) = (tmp_path / "in").iterdir()
    stored = pydicom.dcmread(received)
    assert stored.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    assert stored.SOPInstanceUID == pydicom.dcmread(film, stop_before_pixels=True).SOPInstanceUID
    assert stored.PixelData == pydicom.dcmread(film).PixelData


def test_a_node_that_takes_none_of_it_says_so(tmp_path, dicom_dir):
    config = tmp_path / "echo_only.cfg"
    config.write_text("[[TransferSyntaxes]]\n[Implicit]\nTransferSyntax1 = LittleEndianImplicit\n"
                      "[[PresentationContexts]]\n[EchoOnly]\nPresentationContext1 = VerificationSOPClass\\Implicit\n"
                      "[[Profiles]]\n[Echo]\nPresentationContexts = EchoOnly\n")
    film = _explicit_copy(dicom_dir / "RG1_JLSN.dcm", tmp_path / "films" / "film.dcm")
    with storescp(tmp_path, "-xf", str(config), "Echo") as node:
        with pytest.raises(DicomNetworkError, match=r"accepts none of the kinds of object offered "
                                                    r"\(Computed Radiography Image Storage\)"):
            send_files(node, [film], SETTINGS)


def test_a_silent_node_and_one_that_ends_the_association_are_told_apart(tmp_path, dicom_dir):
    """pynetdicom aborts the association itself when the wait runs out, so "aborted" alone told nothing: the
    two messages were swapped."""
    film = _explicit_copy(dicom_dir / "RG1_JLSN.dcm", tmp_path / "films" / "film.dcm")
    quick = NetworkSettings(calling_ae="CXRTEST", timeout_s=3)
    with storescp(tmp_path / "slow", "--sleep-during", "10") as node:
        with pytest.raises(DicomNetworkError, match=r"no answer to the send \(C-STORE; 0 of 1 files sent\) within 3 s"):
            send_files(node, [film], quick)
    with storescp(tmp_path / "abort", "--abort-after") as node:
        with pytest.raises(DicomNetworkError, match=r"the node ended the association during the send .* after \d"):
            send_files(node, [film], quick)


def test_cancel_does_not_wait_for_a_silent_node(tmp_path, dicom_dir):
    film = _explicit_copy(dicom_dir / "RG1_JLSN.dcm", tmp_path / "films" / "film.dcm")
    slow = NetworkSettings(calling_ae="CXRTEST", timeout_s=30)
    with storescp(tmp_path, "--sleep-during", "20") as node:
        start = time.monotonic()
        with pytest.raises(OperationCancelled):
            send_files(node, [film], slow, cancelled=lambda: time.monotonic() - start > 1.0)
        assert time.monotonic() - start < 5  # it waited out the 30-s timeout


@pytest.fixture(scope="module")
def dose_study(tmp_path_factory, dicom_dir):
    """An Orthanc holding a study of one film, its X-ray radiation dose report, and an object of a kind no
    retrieve offers (Raw Data); plus, for the search limit, the shared films' own studies."""
    from pydicom.uid import generate_uid

    folder = tmp_path_factory.mktemp("dose_study")
    study = generate_uid()
    film = _explicit_copy(dicom_dir / "RG1_JLSN.dcm", folder / "seed" / "film.dcm")
    ds = pydicom.dcmread(film)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(film, enforce_file_format=True)
    objects = [film]
    for name, sop_class in (("dose", "1.2.840.10008.5.1.4.1.1.88.67"), ("raw", "1.2.840.10008.5.1.4.1.1.66")):
        other = pydicom.Dataset()
        other.SOPClassUID = sop_class
        other.SOPInstanceUID = generate_uid()
        for keyword in ("PatientID", "PatientName", "StudyDate", "AccessionNumber"):
            setattr(other, keyword, ds.get(keyword, ""))
        other.StudyInstanceUID, other.SeriesInstanceUID = study, generate_uid()
        other.Modality = "SR" if name == "dose" else "OT"
        other.file_meta = pydicom.dataset.FileMetaDataset()
        other.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        other.file_meta.MediaStorageSOPClassUID, other.file_meta.MediaStorageSOPInstanceUID = sop_class, other.SOPInstanceUID
        path = folder / "seed" / f"{name}.dcm"
        other.save_as(path, enforce_file_format=True)
        objects.append(path)
    with orthanc(folder / "orthanc") as (node, settings, _):
        report = send_files(node, objects + sorted(dicom_dir.glob("*.dcm")), settings)
        assert report.failed == []
        yield node, settings, study, objects


def test_a_study_with_a_dose_report_is_retrieved(dose_study, tmp_path):
    """A dose report failed the whole retrieve ("status C000") and nothing opened; now it is received, and an
    object no client offers is named while the film still comes and opens."""
    node, settings, study, (film, dose, raw) = dose_study
    report = retrieve_study(node, study, tmp_path / "cache", settings)
    assert report.folder == tmp_path / "cache" / study
    received = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in report.done}
    uid = lambda path: pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID  # noqa: E731
    assert received == {uid(film), uid(dose)}
    ((what, reason),) = report.failed
    raw_series = pydicom.dcmread(raw).SeriesInstanceUID
    assert what == f"series {raw_series} (OT)"
    assert "could not send 1 instance(s)" in reason and "a kind this app does not receive" in reason


def test_a_search_says_when_the_node_holds_more(dose_study):
    node, settings, _, _ = dose_study
    everything = find_studies(node, StudyQuery(), settings)
    assert len(everything) > 2 and not everything.more
    first = find_studies(node, StudyQuery(), settings, limit=2)
    assert len(first) == 2 and first.more
    exactly = find_studies(node, StudyQuery(), settings, limit=len(everything))
    assert len(exactly) == len(everything) and not exactly.more


def test_an_ae_title_too_long_is_named():
    with pytest.raises(ValueError, match="the AE title 'THIS_AE_IS_WAY_TOO_LONG' is 23 characters long; an AE "
                                         "title has at most 16"):
        DicomNode.parse("THIS_AE_IS_WAY_TOO_LONG@127.0.0.1:104")


def test_an_ae_titles_leading_and_trailing_spaces_are_not_kept():
    """PS3.5 6.2: leading and trailing spaces are not significant in an AE value, so a title typed with them is the
    title without them (they were kept, and sent as typed); an empty, too long, backslash or control-character title
    is still refused."""
    assert DicomNode("  ORTHANC ", "127.0.0.1", 4242) == DicomNode("ORTHANC", "127.0.0.1", 4242)
    assert DicomNode.parse(" ORTHANC   @127.0.0.1:4242").ae_title == "ORTHANC"
    assert DicomNode(" " + "A" * 16 + " ", "h", 1).ae_title == "A" * 16  # 16 characters once stripped
    assert NetworkSettings(calling_ae=" CXRTEST  ").calling_ae == "CXRTEST"
    for bad in ("", "    ", "A" * 17, "A\\B", "A\tB", "A\x1bB"):
        with pytest.raises(ValueError, match="1 to 16 printable ASCII characters, no backslash"):
            DicomNode(bad, "h", 1)
