"""Step 4: outputs. PDF report, exported images, DICOM outputs (SC, SR, PDF), de-identification,
output paths and atomic writes."""
