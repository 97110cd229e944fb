"""Step 1 of the pipeline: finding and reading films.

DICOM (pixel data, header, DICOMDIR), PNG/JPEG, study scanning, reduced and isolated decoding.
"""
