"""Step 3: models. Model cards and weights, the classifier on its backends (torch, ONNX Runtime),
lung fields, image checks, scope and suitability, the cardiothoracic ratio."""
