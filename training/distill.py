"""Training losses: label-smoothed cross-entropy, optionally distilled from a bundled teacher model.

A network trained from scratch on the CPU here sees a few tens of thousands of images; the soft
targets of a model that already meets the bar (Hinton et al. 2015, "Distilling the knowledge in a
neural network") carry more information per image than a hard label, so it learns faster. The
teacher sees the same augmented batch, border swap and acquisition shift included, so it passes on
what it reads in the thorax, not a shortcut the augmentation removed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from cxr_engine.model_card import CLASSES, ModelCard
from cxr_engine.preprocessing import PREPROCESSING_VERSION
from cxr_engine.weights import load_model

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
    map of the same pre-processed image).
    """

    def __init__(self, teacher: torch.nn.Module, teacher_card: ModelCard, student_mean: Sequence[float],
                 student_std: Sequence[float], weight: float, temperature: float, label_smoothing: float):
        super().__init__(label_smoothing)
        self.teacher = teacher.eval().requires_grad_(False)
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
        return self.teacher(images * self.scale + self.shift).float()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        hard = super().forward(logits, labels, images)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits.float() / t, dim=1), F.log_softmax(self.teacher_logits(images) / t, dim=1),
                        log_target=True, reduction="batchmean") * t * t
        return (1.0 - self.weight) * hard + self.weight * soft


def load_teacher(card_path: str | Path, input_size: int, device: torch.device,
                 preprocessing: str = PREPROCESSING_VERSION) -> tuple[torch.nn.Module, ModelCard]:
    """The teacher named by a model card JSON (weights checked against its sha256), ready on ``device``;
    ``ValueError`` when its classes, input size or preprocessing version differ from the student's (the
    teacher sees the student's standardised image)."""
    card = ModelCard.load(card_path)
    if card.preprocessing_version != preprocessing:
        raise ValueError(f"{card_path}: teacher preprocessing {card.preprocessing_version} differs from the "
                         f"student's {preprocessing}")
    if list(card.classes) != list(CLASSES):
        raise ValueError(f"{card_path}: teacher classes {card.classes} differ from {list(CLASSES)}")
    if card.input_size != input_size:
        raise ValueError(f"{card_path}: teacher input size {card.input_size} px differs from the student's "
                         f"{input_size} px; train the student at {card.input_size} px")
    model = load_model(card).to(device, memory_format=torch.channels_last)
    log.info("teacher %s (%s, sha256 %s…)", card.name, card.architecture, card.weights_sha256[:12])
    return model, card


def make_criterion(args, student_mean: Sequence[float], student_std: Sequence[float],
                   device: torch.device) -> torch.nn.Module:
    """The training loss ``args`` ask for: plain, or distilled when ``args.teacher`` is set."""
    if not args.teacher:
        return HardLabelLoss(args.label_smoothing)
    teacher, card = load_teacher(args.teacher, args.size, device, getattr(args, "preprocessing", PREPROCESSING_VERSION))
    return DistillationLoss(teacher, card, student_mean, student_std, args.distill_weight, args.distill_temperature,
                            args.label_smoothing).to(device)
