"""Step 2: pixels. The decoded image (``CxrImage``), windowing (VOI), rendering for display,
the model input (preprocessing), overlays and regions of interest."""
