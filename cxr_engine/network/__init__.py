"""The DICOM network client (C-ECHO, C-FIND, C-GET, C-STORE) to nodes the user configures."""
