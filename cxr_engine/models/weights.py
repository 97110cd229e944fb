"""Loading weights safely: safetensors only (no pickle), checked against the card's sha256."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import ModelError, ModelIntegrityError
from .model_card import ModelCard


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_bytes(path: Path, expected_sha256: str, what: str) -> bytes:
    """The file's bytes once their sha256 matches ``expected_sha256`` (hashed, then used: the file
    cannot change in between). ``ModelError`` when it cannot be read (``what`` names it in the
    message), ``ModelIntegrityError`` when the digest differs."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: {what} cannot be read ({exc})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(path, expected_sha256, actual)
    return data


def verify_weights(card: ModelCard) -> Path:
    """The weights path once its sha256 matches the card; ``ModelIntegrityError`` otherwise."""
    path = card.weights_path
    if not path.exists():
        raise ModelError(f"{path}: weights file named by model card {card.name!r} is missing")
    actual = sha256_file(path)
    if actual != card.weights_sha256.lower():
        raise ModelIntegrityError(path, card.weights_sha256, actual)
    return path


def load_model(card: ModelCard):
    """Build the card's architecture and load its verified weights strictly (float32, eval mode)."""
    import torch
    from safetensors.torch import load_file

    from .registry import build_model

    path = verify_weights(card)
    model = build_model(card.architecture, num_classes=len(card.classes), in_chans=card.in_chans)
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ModelError(f"{path}: not a valid safetensors file ({exc})") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {card.architecture} ({exc})") from exc
    # Parameters keep requires_grad: Grad-CAM needs gradients to flow to the feature map.
    return model.eval().to(torch.float32)


def save_weights(model, path: str | Path, half: bool = False) -> str:
    """Write ``model``'s state dict as safetensors (optionally fp16) atomically; returns its sha256."""
    from safetensors.torch import save

    from ..outputs.atomic import write_bytes_atomic

    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    write_bytes_atomic(path, save(state))
    return sha256_file(path)
