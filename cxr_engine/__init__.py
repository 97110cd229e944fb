"""CXR Reader's engine: DICOM/PNG/JPEG reading and display, study scanning, models, inference, Grad-CAM.

Pure Python; never imports Qt. Heavy libraries (torch, timm, cv2) are imported lazily.
"""
__version__ = "0.1.0"
