"""Training losses: label-smoothed cross-entropy, optionally distilled from a bundled teacher model.

A network trained from scratch on the CPU here sees a few tens of thousands of images; the soft
targets of a model that already meets the bar (Hinton et al. 2015, "Distilling the knowledge in a
neural network") carry more information per image than a hard label, so it learns faster. The
teacher sees the same augmented batch, border swap and acquisition shift included, so it passes on
what it reads in the thorax, not a shortcut the augmentation removed.

The teacher is named by its model card JSON or by a training run's folder (its ``best.json``,
e.g. ``training/work/runs/lite0_224_sqrt``). A student trained at several sizes
(``--size-schedule``) hands the teacher its batch resized to the teacher's own input size.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from cxr_engine.models.model_card import CLASSES, ModelCard
from cxr_engine.pixels.preprocessing import PREPROCESSING_VERSION
from cxr_engine.models.weights import load_model

log = logging.getLogger("training.distill")


class HardLabelLoss(torch.nn.Module):
    """Label-smoothed cross-entropy; takes the input images only to share the distillation signature."""

    def __init__(self, label_smoothing: float):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)


class DistillationLoss(HardLabelLoss):
    """``(1 - weight) * CE(labels) + weight * T² * KL(teacher_T || student_T)`` on the same images.

    ``student_mean``/``student_std`` are the normalisation of the batches the student gets; the
    teacher's own card may use another one, so the batch is re-normalised for it (an exact affine
    map of the same pre-processed image). A batch of another size than the card's ``input_size``
    is resized to it first (bilinear, antialiased when shrinking; it commutes with the affine map),
    so a student trained at 128 or 160 px still gets the soft targets of a 224-px teacher.
    """

    def __init__(self, teacher: torch.nn.Module, teacher_card: ModelCard, student_mean: Sequence[float],
                 student_std: Sequence[float], weight: float, temperature: float, label_smoothing: float):
        super().__init__(label_smoothing)
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_size = getattr(teacher_card, "input_size", None)
        self.weight, self.temperature = weight, temperature
        s_mean, s_std = torch.tensor(student_mean), torch.tensor(student_std)
        t_mean, t_std = torch.tensor(teacher_card.mean), torch.tensor(teacher_card.std)
        # teacher_input = (student_input * s_std + s_mean - t_mean) / t_std
        self.register_buffer("scale", (s_std / t_std).view(1, -1, 1, 1))
        self.register_buffer("shift", ((s_mean - t_mean) / t_std).view(1, -1, 1, 1))

    def train(self, mode: bool = True) -> "DistillationLoss":
        super().train(mode)
        self.teacher.eval()  # its batch-norm statistics are fixed
        return self

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's (N, classes) float32 logits for the student's (N, C, H, W) batch."""
        if self.teacher_size and tuple(images.shape[-2:]) != (self.teacher_size, self.teacher_size):
            images = F.interpolate(images.float(), size=(self.teacher_size, self.teacher_size), mode="bilinear",
                                   align_corners=False, antialias=images.shape[-1] > self.teacher_size)
            images = images.contiguous(memory_format=torch.channels_last)
        return self.teacher(images * self.scale + self.shift).float()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        hard = super().forward(logits, labels, images)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits.float() / t, dim=1), F.log_softmax(self.teacher_logits(images) / t, dim=1),
                        log_target=True, reduction="batchmean") * t * t
        return (1.0 - self.weight) * hard + self.weight * soft


def card_path_of(path: str | Path) -> Path:
    """A model card JSON as given, or the ``best.json`` of a training run's folder."""
    path = Path(path)
    if path.is_dir():
        card = path / "best.json"
        if not card.is_file():
            raise ValueError(f"{path}: a run folder without best.json (no epoch has finished yet?)")
        return card
    return path


def load_teacher(card_path: str | Path, input_size: int, device: torch.device,
                 preprocessing: str = PREPROCESSING_VERSION, resize: bool = False) -> tuple[torch.nn.Module, ModelCard]:
    """The teacher named by a model card JSON or a run folder (weights checked against the card's sha256),
    ready on ``device``; ``ValueError`` when its classes or preprocessing version differ from the student's
    (the teacher sees the student's unnormalised model input), or its input size does, unless ``resize``
    (the batch is then resized to the teacher's size, see :class:`DistillationLoss`)."""
    card_path = card_path_of(card_path)
    card = ModelCard.load(card_path)
    if card.preprocessing_version != preprocessing:
        raise ValueError(f"{card_path}: teacher preprocessing {card.preprocessing_version} differs from the "
                         f"student's {preprocessing}")
    if list(card.classes) != list(CLASSES):
        raise ValueError(f"{card_path}: teacher classes {card.classes} differ from {list(CLASSES)}")
    if card.input_size != input_size and not resize:
        raise ValueError(f"{card_path}: teacher input size {card.input_size} px differs from the student's "
                         f"{input_size} px; train the student at {card.input_size} px, or give --size-schedule "
                         f"{input_size}:EPOCHS (the teacher then sees each batch resized to its own size)")
    model = load_model(card).to(device, memory_format=torch.channels_last)
    log.info("teacher %s (%s, sha256 %s…)", card.name, card.architecture, card.weights_sha256[:12])
    return model, card


def make_criterion(args, student_mean: Sequence[float], student_std: Sequence[float],
                   device: torch.device) -> torch.nn.Module:
    """The training loss ``args`` ask for: plain, or distilled when ``args.teacher`` is set."""
    if not args.teacher:
        return HardLabelLoss(args.label_smoothing)
    # A student trained at several sizes sees the teacher at the teacher's own size.
    resize = bool(getattr(args, "size_schedule", None))
    teacher, card = load_teacher(args.teacher, args.size, device, getattr(args, "preprocessing", PREPROCESSING_VERSION),
                                 resize=resize)
    return DistillationLoss(teacher, card, student_mean, student_std, args.distill_weight, args.distill_temperature,
                            args.label_smoothing).to(device)
