"""Registry of the architectures the project trains and ships, built with timm.

Each entry states what inference and Grad-CAM need to know about an architecture: the timm
name, the Grad-CAM target layer, and defaults for input size and normalisation. A model card
(``cxr_engine.models.model_card``) may override size and normalisation for one set of weights.
"""
from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (0.5, 0.5, 0.5)
TF_LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Architecture:
    """How to build one architecture and where to take its Grad-CAM."""

    name: str
    timm_name: str
    grad_cam_layer: str  # dotted module path of the last feature map (after its activation)
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    description: str = ""


_REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` to the registry; names are unique."""
    if arch.name in _REGISTRY:
        raise ValueError(f"architecture {arch.name!r} is registered twice")
    _REGISTRY[arch.name] = arch
    return arch


def list_architectures() -> list[str]:
    return sorted(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(list_architectures())}") from None


def build_model(name: str, num_classes: int, in_chans: int = 3):
    """A freshly initialised ``torch.nn.Module`` for ``name`` (no download, no pretrained weights)."""
    import timm

    arch = get_architecture(name)
    return timm.create_model(arch.timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def resolve_layer(model, dotted: str):
    """The sub-module at ``dotted`` (e.g. ``features.norm5``), with a clear error when absent."""
    module = model
    for part in dotted.split("."):
        if not hasattr(module, part):
            raise AttributeError(f"{type(model).__name__} has no layer {dotted!r} (stopped at {part!r})")
        module = getattr(module, part)
    return module


register(Architecture("densenet121", "densenet121", "features.norm5", description="DenseNet-121 (Huang et al. 2017)"))
register(Architecture("efficientnet_b0", "efficientnet_b0", "bn2", description="EfficientNet-B0 (Tan & Le 2019)"))
register(Architecture("efficientnet_b1", "efficientnet_b1", "bn2", 240, description="EfficientNet-B1 (Tan & Le 2019)"))
for _variant, _size in (("lite0", 224), ("lite1", 240), ("lite2", 260)):
    register(
        Architecture(
            f"tf_efficientnet_{_variant}",
            f"tf_efficientnet_{_variant}",
            "bn2",
            _size,
            TF_LITE_MEAN,
            TF_LITE_STD,
            f"EfficientNet-{_variant.capitalize()} (TensorFlow port, ReLU6, no squeeze-excitation)",
        )
    )
