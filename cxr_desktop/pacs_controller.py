"""The main window's DICOM network commands: Settings → DICOM nodes, Query/Retrieve (a retrieved
study opens in the study browser) and Send the AI result of the image on screen."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from cxr_engine.outputs.undecodable import escape_undecodable

from .dicom_settings import DicomSettings


def dicom_settings(window) -> DicomSettings:
    return DicomSettings(window.settings.store)


def open_dicom_nodes(window):
    """Settings → DICOM nodes (modal); returns the dialog after it closed."""
    from .dicom_nodes_dialog import DicomNodesDialog

    dialog = DicomNodesDialog(dicom_settings(window), window)
    dialog.exec()
    panel = getattr(window, "_pacs_panel", None)
    if panel is not None:
        panel.reload_nodes()
    return dialog


def open_query_retrieve(window):
    """Show the Query/Retrieve panel (one per window); a retrieved study is opened."""
    from .pacs_panel import QueryRetrievePanel

    panel = getattr(window, "_pacs_panel", None)
    if panel is None:
        panel = QueryRetrievePanel(dicom_settings(window), window)
        panel.retrieved.connect(lambda folder: window.open_paths([Path(folder)]))
        panel.status_changed.connect(lambda text: window.statusBar().showMessage(text, 10000))
        window._pacs_panel = panel
    panel.reload_nodes()
    panel.show()
    panel.raise_()
    return panel


def shown_state(window) -> dict:
    """The presentation state of the image on screen: its annotations, the window (centre, width)
    when a window (not a VOI LUT table) is shown, whether high values are shown dark, and how the stored
    film is turned and flipped on screen (the image checks' correction, then the reader's own turns and flips)."""
    from dataclasses import replace

    from cxr_engine.models.image_checks import stored_points, turned_back
    from cxr_engine.outputs.dicom_outputs.presentation_state import SpatialTransformation
    from cxr_engine.pixels.windowing import Window

    from .dicom_send import screen_orientation

    viewer = window.viewer
    store = getattr(window, "annotations", None)
    marks = tuple(store.for_path(viewer.image.path)) if store is not None else ()
    # Drawn on the film as shown; a presentation state refers to the film as stored: a film shown turned or
    # flipped back (View corrected) has its marks written where they lie on the stored film.
    correction = window.workspace.correction(viewer.image.path)
    if correction:
        shape = viewer.image.stored.shape[:2]
        marks = tuple(replace(m, points=stored_points(m.points, correction, shape)) for m in marks)
    voi = viewer.voi
    on_screen = SpatialTransformation.of(lambda stored: screen_orientation(turned_back(stored, correction or ""), viewer))
    return {"marks": marks, "window": (voi.center, voi.width) if isinstance(voi, Window) else None,
            "inverted": viewer.display_inverted, "spatial_transformation": on_screen}


def send_result(window):
    """Ask where to send the AI result of the image on screen, then send it; None when there is
    no classified image yet (the reason is shown)."""
    from .dicom_send import SendResultsDialog, displayed_film

    image = window.viewer.image
    service = window.classification.service
    heatmap_result = service.cached_heatmap(image.path, window.result.heatmap_class) if image is not None else None
    if image is None or heatmap_result is None or window.classification.card is None:
        QMessageBox.information(window, "Send AI result", "Open and classify an image first.")
        return None
    if getattr(image, "source_format", "dicom") != "dicom":
        QMessageBox.information(window, "Send AI result",
                                f"{escape_undecodable(Path(image.path).name)} is not a DICOM file: there is no study to add the result to.")
        return None
    dialog = SendResultsDialog(dicom_settings(window), window.classification.card, image, heatmap_result,
                               displayed_film(window.viewer, heatmap_result), window, **shown_state(window),
                               inputs=window.workspace.opened, out_of_scope=window.result.out_of_scope,
                               # the film's whole warnings, as its PDF, --result-json and cxr-classify's outputs
                               warnings=window.result.film_warnings,
                               # de-identified: the file's notes without paths or UIDs, as the de-identified PDF's
                               deidentified_warnings=window.result.film_warnings_with_notes(
                                   window.workspace.file_notes(image.path, deidentified=True)))
    dialog.show()
    window._send_dialog = dialog
    return dialog
