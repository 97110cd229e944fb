"""The DICOM network client (pynetdicom): Verify (C-ECHO), study query (C-FIND, Study Root),
retrieve (C-GET) into a local folder and send (C-STORE), against one configured node.

Nothing here runs unless a caller asks; the app and the CLI only call it for a node the user
configured. Every failure becomes a ``DicomNetworkError`` that names the node and says plainly
what happened (no answer, connection refused, association rejected, a status code and its
meaning). Long operations take ``cancelled`` (a callable polled a few times a second while the node is
awaited: True aborts the association at once) and ``progress`` (called with (done, total, message)).
"""
from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import CxrError

logger = logging.getLogger(__name__)

DEFAULT_CALLING_AE = "CXRREADER"
DEFAULT_TIMEOUT_S = 30.0
#: Studies a search lists at most (``find_studies``); a node that holds more says so (``FoundStudies.more``).
FIND_LIMIT = 500
#: How often a long operation asks ``cancelled`` while it waits for the node, in seconds.
CANCEL_POLL_S = 0.2
_AE_TITLE = re.compile(r"^[\x20-\x7e]{1,16}$")

Progress = Callable[[int, int, str], None]
Cancelled = Callable[[], bool]


def checked_ae_title(title: str) -> str:
    """``title`` without its leading and trailing spaces, which are not significant in an AE value (PS3.5 6.2,
    Table 6.2-1); ``ValueError`` when what is left is empty, over 16 characters, or holds a backslash or a
    character outside printable ASCII (a control character)."""
    stripped = str(title).strip(" ")
    if not _AE_TITLE.match(stripped) or "\\" in stripped:
        raise ValueError(f"AE title {title!r}: 1 to 16 printable ASCII characters, no backslash")
    return stripped


class DicomNetworkError(CxrError):
    """A DICOM network operation failed; ``reason`` says why in words a user can act on."""

    def __init__(self, node: "DicomNode | str", reason: str):
        self.node = node
        self.reason = reason
        super().__init__(f"{node}: {reason}")


class OperationCancelled(CxrError):
    """The user cancelled; the association was aborted."""


@dataclass(frozen=True)
class DicomNode:
    """A remote DICOM application entity: AE title, host, port; ``tls`` uses TLS (PS3.15 B.1),
    verifying the server against ``ca_file`` (else the system's certificates). ``ae_title`` is kept without
    leading and trailing spaces, which are not significant in an AE value (PS3.5 6.2, Table 6.2-1): ``" PACS "``
    is the node ``PACS``; ``ValueError`` for a title (so stripped) empty, over 16 characters, or holding a
    backslash or a control character (:func:`checked_ae_title`)."""

    ae_title: str
    host: str
    port: int
    tls: bool = False
    ca_file: str = ""
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "ae_title", checked_ae_title(self.ae_title))  # frozen: set once, here
        if not self.host.strip():
            raise ValueError("host is empty")
        if not 1 <= int(self.port) <= 65535:
            raise ValueError(f"port {self.port}: must be 1 to 65535")

    @classmethod
    def parse(cls, text: str) -> "DicomNode":
        """``AE@HOST:PORT`` (as ``cxr-classify --send`` takes it) → a node; ``ValueError`` naming the
        problem otherwise."""
        match = re.fullmatch(r"([^@]+)@(.+):(\d{1,5})", text.strip())
        if not match:
            raise ValueError(f"{text!r}: expected AE@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242")
        title = match.group(1).strip(" ")  # leading and trailing spaces are not significant (PS3.5 6.2)
        if len(title) > 16:
            raise ValueError(f"{text!r}: the AE title {title!r} is {len(title)} characters long; "
                             "an AE title has at most 16")
        return cls(match.group(1), match.group(2).strip("[]"), int(match.group(3)))

    def __str__(self) -> str:
        label = f"{self.name} " if self.name else ""
        return f"{label}{self.ae_title}@{self.host}:{self.port}{' (TLS)' if self.tls else ''}"


@dataclass(frozen=True)
class StudyQuery:
    """Study-level C-FIND keys; empty means "any". ``patient_name`` may hold ``*`` and ``?``
    wildcards (PS3.4 C.2.2.2.4); ``study_date`` is ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD``."""

    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession_number: str = ""

    def identifier(self):
        from pydicom.dataset import Dataset

        ds = Dataset()
        # UTF-8, so that a node that answers in the query's character set keeps every name (Orthanc answers in
        # its own DefaultEncoding, Latin-1 unless configured: names outside it come back as "?").
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientID = self.patient_id
        ds.PatientName = self.patient_name
        ds.StudyDate = self.study_date
        ds.AccessionNumber = self.accession_number
        for keyword in ("StudyInstanceUID", "StudyTime", "StudyDescription", "ModalitiesInStudy",
                        "NumberOfStudyRelatedInstances", "PatientBirthDate", "PatientSex"):
            setattr(ds, keyword, "")
        return ds


@dataclass(frozen=True)
class StudyMatch:
    """One study a C-FIND found (attributes as strings; empty when the node did not return one)."""

    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_description: str = ""
    modalities: str = ""
    instances: str = ""


class FoundStudies(list):
    """The studies a search found (``StudyMatch`` items, in the node's order); ``more`` is True when the node
    holds more matches than were listed (the search stopped at its limit)."""

    more: bool = False


@dataclass
class TransferReport:
    """What a retrieve or a send did: files moved, and (file or SOP Instance UID, reason) failures;
    ``folder`` is where a retrieve wrote its files (None for a send)."""

    done: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    folder: Path | None = None


@dataclass(frozen=True)
class NetworkSettings:
    """This app's side: its AE title (the calling AE, kept without leading and trailing spaces, which are not
    significant: PS3.5 6.2; its callers check the rest with :func:`checked_ae_title`) and the time it waits for any
    answer."""

    calling_ae: str = DEFAULT_CALLING_AE
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self):
        object.__setattr__(self, "calling_ae", str(self.calling_ae).strip(" "))


# --------------------------------------------------------------------------------- operations

def verify(node: DicomNode, settings: NetworkSettings = NetworkSettings()) -> None:
    """C-ECHO (Verification SOP Class); returns when the node answers Success."""
    from pynetdicom.sop_class import Verification

    assoc = _associate(node, settings, [(Verification, None)])
    try:
        status = assoc.send_c_echo()
        _check_status(node, status, "Verify (C-ECHO)")
    finally:
        _close(assoc)


def find_studies(node: DicomNode, query: StudyQuery, settings: NetworkSettings = NetworkSettings(),
                 cancelled: Cancelled | None = None, limit: int | None = None) -> FoundStudies:
    """C-FIND at study level with the Study Root model: the matching studies, at most ``limit`` (default
    ``FIND_LIMIT``; ``FoundStudies.more`` says whether the node had more; the query is then cancelled)."""
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    limit = FIND_LIMIT if limit is None else limit
    assoc = _associate(node, settings, [(FIND, None)])
    matches = FoundStudies()
    try:
        with _watch(assoc, cancelled) as waited:
            for status, identifier in assoc.send_c_find(query.identifier(), FIND):
                _abort_if_cancelled(assoc, node, cancelled)
                if not status:
                    raise _no_answer(assoc, node, settings, "the query (C-FIND)", waited())
                code = int(status.Status)
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    if len(matches) >= limit:
                        matches.more = True
                        assoc.abort()
                        return matches
                    matches.append(_study_match(identifier))
                elif code != 0x0000:
                    _check_status(node, status, "the query (C-FIND)")
        _raise_if_cancelled(node, cancelled)  # an association aborted by the watch may end the answers quietly
    finally:
        _close(assoc)
    return matches


def retrieve_study(node: DicomNode, study_instance_uid: str, folder: Path,
                   settings: NetworkSettings = NetworkSettings(), progress: Progress | None = None,
                   cancelled: Cancelled | None = None) -> TransferReport:
    """C-GET of one study into ``folder/<Study Instance UID>/<SOP Instance UID>.dcm`` (``report.folder``).

    Series by series (a C-FIND at series level first): a node such as Orthanc ends a whole C-GET at the first
    instance the client cannot take (an object of a kind it did not offer), so one odd object would keep
    every film of the study away; now only its series fails, and is named. A node that lists no series is
    asked for the study at once. Files are written atomically as the node sends them; a file already there is
    replaced (the same instance). What can be received: ``retrieve_contexts()``. Raises ``DicomNetworkError``
    when nothing at all came and every request failed (a refusal, not an odd object).
    """
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    target = Path(folder) / _safe_name(study_instance_uid)
    report = TransferReport(folder=target)

    def on_store(event):
        try:
            path = target / f"{_safe_name(event.request.AffectedSOPInstanceUID)}.dcm"
            _write_received(event, path)
        except Exception as exc:  # the node is told, the report names it
            report.failed.append((str(event.request.AffectedSOPInstanceUID), f"{type(exc).__name__}: {exc}"))
            return 0xA700
        report.done.append(path)
        if progress:
            progress(len(report.done), 0, path.name)
        return 0x0000

    series = _study_series(node, study_instance_uid, settings, cancelled)
    requests = [_get_identifier(study_instance_uid, uid) for uid, _ in series] or [_get_identifier(study_instance_uid)]
    contexts = [(GET, None)] + retrieve_contexts()
    roles = [build_role(uid, scp_role=True) for uid in dict.fromkeys(sop for sop, _ in contexts[1:])]
    assoc = _associate(node, settings, contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
    refusals: list[DicomNetworkError] = []
    try:
        with _watch(assoc, cancelled) as waited:
            for number, identifier in enumerate(requests):
                what = (f"series {series[number][0]} ({series[number][1] or 'modality not given'})" if series
                        else study_instance_uid)
                before = len(report.done)
                for status, _ in assoc.send_c_get(identifier, GET):
                    _abort_if_cancelled(assoc, node, cancelled)
                    if not status:
                        raise _no_answer(assoc, node, settings, "the retrieve (C-GET)", waited())
                    code = int(status.Status)
                    if code == 0xFF00:
                        remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
                        if progress:
                            progress(len(report.done), len(report.done) + remaining, "")
                    elif code == 0xB000 or (code != 0x0000 and (series or len(report.done) > before)):
                        # Some instances (or this series) did not come, often objects of a kind this app does
                        # not take: what came is kept and opened, what did not is named.
                        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                        logger.warning("%s: retrieve of %s finished with %s and %d failed sub-operations", node,
                                       what, status_meaning(code), failed)
                        report.failed.append((what, _partial_retrieve(code, failed, status)))
                        if len(report.done) == before:
                            refusals.append(DicomNetworkError(node, f"the retrieve (C-GET) failed: "
                                                                    f"{status_meaning(code)}"))
                    elif code != 0x0000:
                        _check_status(node, status, "the retrieve (C-GET)")
        _raise_if_cancelled(node, cancelled)
    finally:
        _close(assoc)
    if not report.done and refusals and len(refusals) == len(requests):
        raise refusals[0]  # nothing came of any series: the node refuses (told as before), not one odd object
    return report


def _get_identifier(study_instance_uid: str, series_instance_uid: str = ""):
    from pydicom.dataset import Dataset

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES" if series_instance_uid else "STUDY"
    identifier.StudyInstanceUID = study_instance_uid
    if series_instance_uid:
        identifier.SeriesInstanceUID = series_instance_uid
    return identifier


def _study_series(node: DicomNode, study_instance_uid: str, settings: NetworkSettings,
                  cancelled: Cancelled | None) -> list[tuple[str, str]]:
    """(Series Instance UID, Modality) of each series of the study (C-FIND at series level, Study Root);
    empty when the node lists none or refuses the query (the study is then retrieved whole)."""
    from pydicom.dataset import Dataset
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = study_instance_uid
    identifier.SeriesInstanceUID = ""
    identifier.Modality = ""
    found: list[tuple[str, str]] = []
    try:
        assoc = _associate(node, settings, [(FIND, None)])
    except DicomNetworkError:
        return []
    try:
        with _watch(assoc, cancelled):
            for status, answer in assoc.send_c_find(identifier, FIND):
                _abort_if_cancelled(assoc, node, cancelled)
                if not status:
                    return []
                if int(status.Status) in (0xFF00, 0xFF01) and answer is not None:
                    uid = str(answer.get("SeriesInstanceUID", "") or "").strip()
                    if uid and uid not in {known for known, _ in found}:
                        found.append((uid, str(answer.get("Modality", "") or "").strip()))
                elif int(status.Status) != 0x0000:
                    return []
        _raise_if_cancelled(node, cancelled)
    finally:
        _close(assoc)
    return found


def _partial_retrieve(code: int, failed: int, status) -> str:
    count = f"{failed} instance(s)" if failed else "some instances"
    uids = status.get("FailedSOPInstanceUIDList", "") or ""
    listed = [str(uid) for uid in (uids if isinstance(uids, (list, tuple)) or type(uids).__name__ == "MultiValue"
                                   else [uids]) if str(uid).strip()]
    which = f" ({', '.join(listed[:3])}{', ...' if len(listed) > 3 else ''})" if listed else ""
    cause = ("objects of a kind this app does not receive, or in a transfer syntax it did not offer"
             if code in (0xB000, 0xC000) or 0xA900 <= code <= 0xA9FF else "the node's own refusal")
    return f"the node could not send {count}{which}, {status_meaning(code)}: {cause}"


def send_files(node: DicomNode, paths: Sequence[Path], settings: NetworkSettings = NetworkSettings(),
               progress: Progress | None = None, cancelled: Cancelled | None = None) -> TransferReport:
    """C-STORE each DICOM file in ``paths`` (in its own transfer syntax) over one association.

    A file the node refuses is named in the report with the status and its meaning; the others
    are still sent. Raises ``DicomNetworkError`` when no association can be made at all.
    """
    from pydicom import dcmread

    report = TransferReport()
    datasets = []
    for path in paths:
        try:
            datasets.append((Path(path), _with_transfer_syntax(dcmread(path, force=True))))
        except Exception as exc:
            report.failed.append((str(path), f"not a readable DICOM file ({type(exc).__name__}: {exc})"))
    contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets})
    if not contexts:
        return report
    if len(contexts) > 128:
        raise DicomNetworkError(node, f"{len(contexts)} kinds of object in one send; at most 128 fit one association")
    assoc = _associate(node, settings, [(sop, store_syntaxes(ts)) for sop, ts in contexts])
    try:
        with _watch(assoc, cancelled) as waited:
            for number, (path, ds) in enumerate(datasets, start=1):
                _abort_if_cancelled(assoc, node, cancelled)
                if progress:
                    progress(number - 1, len(datasets), path.name)
                try:
                    status = assoc.send_c_store(ds)
                except ValueError:  # no accepted presentation context for this object
                    report.failed.append((str(path), _not_accepted(assoc, ds)))
                    continue
                if not status:
                    _abort_if_cancelled(assoc, node, cancelled)
                    raise _no_answer(assoc, node, settings, f"the send (C-STORE; {len(report.done)} of "
                                                            f"{len(datasets)} files sent)", waited())
                code = int(status.Status)
                if code == 0x0000 or 0xB000 <= code <= 0xBFFF:
                    report.done.append(path)
                else:
                    report.failed.append((str(path), f"refused: {status_meaning(code)}"))
        _raise_if_cancelled(node, cancelled)
        if progress:
            progress(len(datasets), len(datasets), "")
    finally:
        _close(assoc)
    return report


def store_syntaxes(transfer_syntax: str) -> list[str]:
    """The transfer syntaxes a send offers for a file in ``transfer_syntax``: its own first, and for an
    uncompressed little-endian file the other of Explicit and Implicit VR Little Endian as well (pynetdicom
    re-encodes between them). Every storage node must take Implicit VR Little Endian (PS3.5 10.1); some take
    nothing else. A compressed or big-endian file is offered only as it is."""
    from pydicom import uid

    plain = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]
    if transfer_syntax in plain:
        return [transfer_syntax] + [other for other in plain if other != transfer_syntax]
    return [transfer_syntax]


def _not_accepted(assoc, ds) -> str:
    """Why an object could not be sent on ``assoc``: its kind refused, or only its transfer syntax."""
    from pydicom.uid import UID

    sop, syntax = UID(str(ds.SOPClassUID)), UID(str(ds.file_meta.TransferSyntaxUID))
    taken = sorted({str(UID(cx.transfer_syntax[0]).name) for cx in assoc.accepted_contexts
                    if cx.abstract_syntax == sop})
    if not taken:
        return f"the node accepts no {sop.name} objects"
    return f"the node accepts {sop.name} only in {', '.join(taken)}, not in {syntax.name}"


# --------------------------------------------------------------------------------- helpers

#: Image storage SOP classes a retrieve offers to receive, each in every transfer syntax this app
#: decodes: one presentation context per syntax, since a node accepts one syntax per context and
#: may be unable to transcode (Orthanc 1.10 cannot transcode JPEG 2000 for C-GET).
RETRIEVE_IMAGE_CLASS_NAMES: tuple[str, ...] = (
    "ComputedRadiographyImageStorage", "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing", "SecondaryCaptureImageStorage", "CTImageStorage", "MRImageStorage",
)
#: Other objects a retrieve receives (this app's own outputs among them), uncompressed.
#: An X-ray study often carries a radiation dose report (RDSR) or a CAD report beside its films: C-GET fails
#: for any instance whose class was not offered, so these are offered too (they are kept, not shown).
RETRIEVE_DOCUMENT_CLASS_NAMES: tuple[str, ...] = (
    "BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage", "Comprehensive3DSRStorage",
    "ExtensibleSRStorage", "XRayRadiationDoseSRStorage", "ChestCADSRStorage", "MammographyCADSRStorage",
    "KeyObjectSelectionDocumentStorage", "EncapsulatedPDFStorage", "GrayscaleSoftcopyPresentationStateStorage",
    "ColorSoftcopyPresentationStateStorage",
)


def retrieve_contexts() -> list[tuple[str, list[str]]]:
    """(SOP class, [one transfer syntax]) pairs a C-GET proposes for the objects it receives (< 128)."""
    from pydicom import uid
    from pynetdicom import sop_class

    contexts = [(str(getattr(sop_class, name)), [syntax])
                for name in RETRIEVE_IMAGE_CLASS_NAMES for syntax in RETRIEVE_TRANSFER_SYNTAXES]
    contexts += [(str(getattr(sop_class, name)), [syntax]) for name in RETRIEVE_DOCUMENT_CLASS_NAMES
                 for syntax in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian)]
    return contexts


def _transfer_syntaxes() -> list[str]:
    from pydicom import uid

    return [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian,
            uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1,
            uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.RLELossless]


RETRIEVE_TRANSFER_SYNTAXES: list[str] = _transfer_syntaxes()


def _associate(node: DicomNode, settings: NetworkSettings, contexts: Iterable[tuple[str, list[str] | None]],
               ext_neg=None, handlers=None):
    from pynetdicom import AE

    _probe(node, settings.timeout_s)
    ae = AE(ae_title=settings.calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.timeout_s
    for sop_class, syntaxes in contexts:
        if syntaxes:
            ae.add_requested_context(sop_class, syntaxes)
        else:
            ae.add_requested_context(sop_class)
    tls = (_tls_context(node), node.host) if node.tls else None
    assoc = ae.associate(node.host, int(node.port), ae_title=node.ae_title, ext_neg=ext_neg,
                         tls_args=tls, evt_handlers=handlers or [])
    if assoc.is_established:
        # pynetdicom leaves the requestor's socket blocking without a limit once connected: a node that stops
        # reading in the middle of a large film would hold this app's send (and any abort, which waits for it)
        # for ever. A send or receive that makes no progress for the timeout now ends the connection.
        raw = _raw_socket(assoc)
        if raw is not None:
            raw.settimeout(settings.timeout_s)
        return assoc
    check = f"check that the node knows this app's AE title {settings.calling_ae!r} and is called {node.ae_title!r}"
    if assoc.is_rejected:
        raise DicomNetworkError(node, f"refused the association: {check}")
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        # The node answered, but accepted none of what was proposed; pynetdicom then aborts.
        from pydicom.uid import UID

        kinds = sorted({str(UID(cx.abstract_syntax).name) for cx in assoc.rejected_contexts})
        raise DicomNetworkError(node, f"the node accepts none of the kinds of object offered "
                                      f"({', '.join(kinds[:4])}{', ...' if len(kinds) > 4 else ''})")
    # A rejection can also arrive as a closed connection, so the AE titles are named here too.
    raise DicomNetworkError(node, f"the association failed (the node closed it or gave no answer within "
                                  f"{settings.timeout_s:g} s): {check}, that it "
                                  f"{'speaks' if node.tls else 'does not expect'} DICOM TLS, and that port "
                                  f"{node.port} is its DICOM port (not its web port)")


def _probe(node: DicomNode, timeout_s: float) -> None:
    """Open and close a TCP connection (with the TLS handshake for a TLS node), so that the usual
    failures are told plainly."""
    try:
        with socket.create_connection((node.host, int(node.port)), timeout=timeout_s) as connection:
            if node.tls:
                _handshake(node, connection)
    except socket.gaierror as exc:
        raise DicomNetworkError(node, f"host {node.host!r} not found ({exc.strerror or exc})") from exc
    except ConnectionRefusedError as exc:
        raise DicomNetworkError(node, f"connection refused: nothing listens on port {node.port}") from exc
    except socket.timeout as exc:
        raise DicomNetworkError(node, f"no answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise DicomNetworkError(node, f"cannot connect ({exc.strerror or exc})") from exc


def _handshake(node: DicomNode, connection: socket.socket) -> None:
    try:
        with _tls_context(node).wrap_socket(connection, server_hostname=node.host):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise DicomNetworkError(node, f"the node's TLS certificate is not trusted ({exc.verify_message}): "
                                      "give its CA certificate") from exc
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DicomNetworkError(node, f"the TLS handshake failed ({reason}): does the node speak DICOM TLS "
                                      "on this port?") from exc


def _tls_context(node: DicomNode) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.ca_file or None)
    return context


def _close(assoc) -> None:
    if assoc.is_established:
        assoc.release()


def _abort_if_cancelled(assoc, node: DicomNode, cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        assoc.abort()
        raise OperationCancelled(f"{node}: cancelled")


def _raise_if_cancelled(node: DicomNode, cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise OperationCancelled(f"{node}: cancelled")


@contextmanager
def _watch(assoc, cancelled: Cancelled | None):
    """While the block waits for the node: abort ``assoc`` as soon as ``cancelled()`` says so (pynetdicom's
    calls block until an answer or the timeout, so polling between answers alone could keep a reader waiting
    the whole timeout), and time the wait. Yields ``waited()``: seconds since the last answer."""
    last = [time.monotonic()]
    stop = threading.Event()

    def watch():
        while not stop.wait(CANCEL_POLL_S):
            if cancelled is not None and cancelled() and assoc.is_established:
                _stop(assoc)
                return

    def note_answer(event):
        last[0] = time.monotonic()

    from pynetdicom import evt

    assoc.bind(evt.EVT_DIMSE_RECV, note_answer)
    watcher = threading.Thread(target=watch, name="dicom-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield lambda: time.monotonic() - last[0]
    finally:
        stop.set()
        watcher.join()
        assoc.unbind(evt.EVT_DIMSE_RECV, note_answer)


def _raw_socket(assoc) -> socket.socket | None:
    return getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)


def _stop(assoc, grace_s: float = 1.0) -> None:
    """Abort ``assoc`` (an A-ABORT to the node); when that does not finish within ``grace_s`` (the connection is
    stuck sending to a node that no longer reads, and pynetdicom's abort waits for it), close the socket."""
    aborter = threading.Thread(target=assoc.abort, name="dicom-abort", daemon=True)
    aborter.start()
    aborter.join(grace_s)
    if aborter.is_alive():
        raw = _raw_socket(assoc)
        try:
            if raw is not None:
                raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _no_answer(assoc, node: DicomNode, settings: NetworkSettings, what: str,
               waited_s: float | None = None) -> DicomNetworkError:
    """No response to ``what``: either the wait ran out (pynetdicom then aborts the association itself) or the
    node ended the association sooner; ``waited_s`` (seconds since the node last answered) tells which."""
    timed_out = (waited_s >= 0.95 * settings.timeout_s) if waited_s is not None else not assoc.is_aborted
    if not timed_out:
        return DicomNetworkError(node, f"the node ended the association during {what} after {waited_s or 0:.1f} s: "
                                       f"it may not allow this app's AE title {settings.calling_ae!r} to do this")
    return DicomNetworkError(node, f"no answer to {what} within {settings.timeout_s:g} s (a node that does not "
                                   f"allow this app's AE title {settings.calling_ae!r} to do this may stay silent)")


def _check_status(node: DicomNode, status, what: str) -> None:
    if not status:
        raise DicomNetworkError(node, f"no answer to {what}")
    code = int(status.Status)
    if code != 0x0000:
        comment = str(status.get("ErrorComment", "") or "").strip()
        raise DicomNetworkError(node, f"{what} failed: {status_meaning(code)}{f' ({comment})' if comment else ''}")


def status_meaning(code: int) -> str:
    """``0xA700`` → ``status A700: out of resources``: pynetdicom's text for the code (PS3.7 Annex C)."""
    from pynetdicom.status import (GENERAL_STATUS, QR_FIND_SERVICE_CLASS_STATUS, QR_GET_SERVICE_CLASS_STATUS,
                                   STORAGE_SERVICE_CLASS_STATUS)

    for table in (STORAGE_SERVICE_CLASS_STATUS, QR_FIND_SERVICE_CLASS_STATUS, QR_GET_SERVICE_CLASS_STATUS,
                  GENERAL_STATUS):
        if code in table:
            kind, text = table[code]
            return f"status {code:04X}: {text or kind}".rstrip()
    return f"status {code:04X}"


def _with_transfer_syntax(ds):
    """``ds`` with a Transfer Syntax UID in its file meta; an old file without file meta gets the
    syntax pydicom parsed it with. Raises ValueError when it has no SOP Class or Instance UID."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        raise ValueError("no SOP Class UID or SOP Instance UID")
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if not meta.get("TransferSyntaxUID"):
        little, implicit = ds.original_encoding
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        ds.file_meta = meta
    return ds


def _study_match(identifier) -> StudyMatch:
    def get(keyword: str) -> str:
        """The value as a string; a multi-valued one joined with backslashes, as DICOM writes it."""
        value = identifier.get(keyword, "")
        if value is None:
            return ""
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return "\\".join(str(v).strip() for v in value)
        return str(value).strip()

    return StudyMatch(study_instance_uid=get("StudyInstanceUID"), patient_id=get("PatientID"),
                      patient_name=get("PatientName"), study_date=get("StudyDate"), study_time=get("StudyTime"),
                      accession_number=get("AccessionNumber"), study_description=get("StudyDescription"),
                      modalities=get("ModalitiesInStudy"), instances=get("NumberOfStudyRelatedInstances"))


def _safe_name(uid: str) -> str:
    """A UID as a file name: digits and dots only (a node's answer never picks a path)."""
    cleaned = re.sub(r"[^0-9.]", "_", str(uid).strip())[:64]
    if not cleaned.strip("._"):
        raise ValueError(f"not a UID: {uid!r}")
    return cleaned


def _write_received(event, path: Path) -> None:
    import io

    from pydicom.filewriter import dcmwrite

    from ..outputs.atomic import write_bytes_atomic

    dataset = event.dataset
    dataset.file_meta = event.file_meta
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    write_bytes_atomic(path, buffer.getvalue())
