"""Export a model to ONNX for the torch-free backend (``cxr_engine.models.onnx_backend``) and record it in its card.

    python -m training.export_onnx --card resources/models/<name>.json [--out FILE.onnx]

The graph maps ``input`` (B, C, S, S) float32 to ``logits`` (B, classes) and ``features``
(B, K, h, w), the activation map of the architecture's Grad-CAM layer, with a dynamic batch
axis. The classifier's weight matrix goes into the file's metadata for the heat-map. Batch norms
stay separate nodes (ONNX Runtime fuses them when it loads the file), so every weight is the card's
own value; those that float16 holds exactly (all of them for float16 weights) are stored as
float16 with a Cast to float32, which halves the file and changes no number. Before the file is
written, ONNX Runtime's outputs are checked against torch's; then the file (by default
``<weights>.onnx`` beside the safetensors) and its sha256 are recorded in the model card.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cxr_engine.outputs.atomic import write_bytes_atomic
from cxr_engine.errors import ModelError
from cxr_engine.models.model_card import ModelCard
from cxr_engine.models.onnx_backend import FEATURES_NAME, INPUT_NAME, LOGITS_NAME, export_metadata
from cxr_engine.models.registry import get_architecture, resolve_layer
from cxr_engine.models.weights import load_model

logger = logging.getLogger("training.export_onnx")

OPSET = 17
LOGITS_TOLERANCE = 1e-4  # max abs difference, ONNX Runtime vs torch
FEATURES_TOLERANCE = 1e-4  # relative to the largest activation
HEAD_TOLERANCE = 1e-4  # logits vs linear(mean of features): the CAM = Grad-CAM identity needs this head


class LogitsAndFeatures(torch.nn.Module):
    """``model`` returning its logits and the output of its sub-module ``layer`` (a dotted path),
    captured by a forward hook during the call, as Grad-CAM captures it."""

    def __init__(self, model: torch.nn.Module, layer: str):
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured = []

        def capture(_module, _inputs, output):
            captured.append(output)

        handle = resolve_layer(self.model, self.layer).register_forward_hook(capture)
        try:
            logits = self.model(x)
        finally:
            handle.remove()
        return logits, captured[0]


def export_onnx(card: ModelCard, out_path: str | Path | None = None) -> tuple[Path, str]:
    """Export ``card``'s verified weights to ONNX, check it, write it and record it in the card.

    Returns the file's path and sha256. The card is saved when it has a path.
    """
    model = load_model(card)
    grad_cam_layer = get_architecture(card.architecture).grad_cam_layer
    wrapper = LogitsAndFeatures(model, grad_cam_layer).eval()
    class_weights = _class_weights(model, wrapper, card)
    metadata = export_metadata(card, grad_cam_layer, class_weights)
    data = _add_metadata(_store_exact_float16(_trace(wrapper, card)), metadata)
    _check_against_torch(data, wrapper, card)

    out = Path(out_path) if out_path else card.weights_path.with_suffix(".onnx")
    write_bytes_atomic(out, data)
    sha = hashlib.sha256(data).hexdigest()
    card.onnx_file = _relative_to_card(out, card)
    card.onnx_sha256 = sha
    if card.path is not None:
        card.save(card.path)
    logger.info("wrote %s (%.1f MB, sha256 %s) for model %s", out, len(data) / 1e6, sha, card.name)
    return out, sha


def _example(card: ModelCard, batch: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, card.in_chans, card.input_size, card.input_size, generator=generator)


def _class_weights(model: torch.nn.Module, wrapper: LogitsAndFeatures, card: ModelCard) -> np.ndarray:
    """The classifier's (classes, K) weights, once the head is shown to be GAP + one linear layer."""
    head = model.get_classifier()
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"{card.architecture}: classifier is {type(head).__name__}, not one linear layer")
    with torch.no_grad():
        logits, features = wrapper(_example(card, 2, seed=1))
        expected = torch.nn.functional.linear(features.mean(dim=(2, 3)), head.weight, head.bias)
    diff = float((expected - logits).abs().max())
    if diff > HEAD_TOLERANCE:
        raise ModelError(f"{card.architecture}: logits are not a linear map of the pooled Grad-CAM layer "
                         f"(max difference {diff:.2e}), so its CAM would not equal Grad-CAM")
    return head.weight.detach().float().cpu().numpy()


def _trace(wrapper: LogitsAndFeatures, card: ModelCard) -> bytes:
    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False) on purpose: it traces these timm models exactly and
    # needs no onnxscript; its deprecation notice is not news to whoever runs this.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (_example(card, 1, seed=0),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[LOGITS_NAME, FEATURES_NAME],
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, LOGITS_NAME, FEATURES_NAME)},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
            # EVAL would fold each batch norm into its convolution: new float32 values, no float16 storage
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    return buffer.getvalue()


def _store_exact_float16(data: bytes) -> bytes:
    """Store each float32 initializer that float16 represents exactly as float16 plus a Cast node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_model_from_string(data)
    kept, casts = [], []
    for tensor in proto.graph.initializer:
        values = numpy_helper.to_array(tensor)
        half = values.astype(np.float16)
        if values.dtype != np.float32 or values.size < 2 or not np.array_equal(half.astype(np.float32), values):
            kept.append(tensor)
            continue
        kept.append(numpy_helper.from_array(half, f"{tensor.name}__float16"))
        casts.append(helper.make_node("Cast", [f"{tensor.name}__float16"], [tensor.name], to=TensorProto.FLOAT,
                                      name=f"{tensor.name}__to_float32"))
    nodes = list(proto.graph.node)
    del proto.graph.initializer[:], proto.graph.node[:]
    proto.graph.initializer.extend(kept)
    proto.graph.node.extend(casts + nodes)
    logger.info("%d of %d weight tensors stored as float16 (exact)", len(casts), len(kept))
    return proto.SerializeToString()


def _add_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    proto = onnx.load_model_from_string(data)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _check_against_torch(data: bytes, wrapper: LogitsAndFeatures, card: ModelCard) -> None:
    """ONNX Runtime must reproduce torch on a batch of 3 (another size than the traced one)."""
    import onnxruntime

    example = _example(card, 3, seed=2)
    with torch.no_grad():
        logits, features = (t.numpy() for t in wrapper(example))
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    ort_logits, ort_features = session.run([LOGITS_NAME, FEATURES_NAME], {INPUT_NAME: example.numpy()})
    logits_diff = float(np.abs(ort_logits - logits).max())
    features_diff = float(np.abs(ort_features - features).max() / max(1e-12, float(np.abs(features).max())))
    logger.info("ONNX Runtime vs torch: logits max abs diff %.2e, features max rel diff %.2e",
                logits_diff, features_diff)
    if logits_diff > LOGITS_TOLERANCE or features_diff > FEATURES_TOLERANCE:
        raise ModelError(f"{card.name}: ONNX export differs from torch (logits {logits_diff:.2e}, "
                         f"features {features_diff:.2e}); not written")


def _relative_to_card(path: Path, card: ModelCard) -> str:
    """``path`` as the card should name it: relative to the card's folder where possible."""
    base = card.path.parent if card.path else Path.cwd()
    try:
        return os.path.relpath(path.resolve(), base.resolve()).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export_onnx", description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="the model card .json to export")
    parser.add_argument("--out", type=Path, help="where to write the .onnx (default: beside the weights)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        export_onnx(ModelCard.load(args.card), args.out)
    except ModelError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
