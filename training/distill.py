"""Training losses: label-smoothed cross-entropy, optionally distilled from a bundled teacher model.

A network trained from scratch on the CPU here sees a few tens of thousands of images; the soft
targets of a model that already meets the bar (Hinton et al. 2015, "Distilling the knowledge in a
neural network") carry more information per image than a hard label, so it learns faster. The
teacher sees the same augmented batch, border swap and acquisition shift included, so it passes on
what it reads in the thorax, not a shortcut the augmentation removed.

The teacher is named by its model card JSON or by a training run's folder (its ``best.json``,
e.g. ``training/work/runs/lite0_224_sqrt``). A student trained at several sizes
(``--size-schedule``) hands the teacher its batch resized to the teacher's own input size.

Optionally (``--feature-distill-weight``) the student also learns which films of a batch the teacher's
pooled features hold alike: similarity-preserving distillation (Tung & Mori 2019, "Similarity-Preserving
Knowledge Distillation", ICCV), which needs no projection between the two networks' feature widths.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from cxr_engine.models.ensemble_card import EnsembleCard, networks
from cxr_engine.models.model_card import CLASSES, load_card
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

    An averaged teacher (``teacher`` a sequence of networks, ``teacher_card`` an ensemble card with
    ``member_cards`` and ``member_weights``): each member sees the batch in its own normalisation and
    size, and the teacher's logits are the members' weighted mean log-probabilities, the engine's
    ``cxr_engine.models.ensemble.ensemble_logits`` without the ensemble's ``logit_offsets`` (those
    are the ensemble's operating point; the student gets its own from its validation split).

    ``feature_weight`` > 0 adds ``feature_weight * similarity_loss`` between the batch similarities of
    the student's pooled features (the input of ``student.get_classifier()``, caught by a forward
    pre-hook, so the loss must be given the logits of that network's forward pass) and the teacher's
    (timm's pre-logits; an averaged teacher's: the members' weighted mean similarity).
    """

    def __init__(self, teacher, teacher_card, student_mean: Sequence[float],
                 student_std: Sequence[float], weight: float, temperature: float, label_smoothing: float,
                 feature_weight: float = 0.0, student: torch.nn.Module | None = None):
        super().__init__(label_smoothing)
        if feature_weight > 0 and student is None:
            raise ValueError("feature distillation needs the student network (its pooled features)")
        self.feature_weight = feature_weight
        self._student_features: torch.Tensor | None = None
        self._hook = None
        if feature_weight > 0:
            # The input of the student's classifier is its pooled (N, D) features (timm's pre-logits).
            head = getattr(student, "module", student).get_classifier()
            self._hook = head.register_forward_pre_hook(self._keep_student_features)
        networks = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
        cards = list(getattr(teacher_card, "member_cards", None) or [teacher_card])
        if len(networks) != len(cards):
            raise ValueError(f"{len(networks)} teacher networks for {len(cards)} cards")
        self.averaged = len(networks) > 1
        self.teachers = torch.nn.ModuleList(net.eval().requires_grad_(False) for net in networks)
        self.teacher_sizes = [getattr(card, "input_size", None) for card in cards]
        member_weights = list(getattr(teacher_card, "member_weights", None) or [1.0])
        self.register_buffer("member_weights", torch.tensor(member_weights, dtype=torch.float32))
        self.weight, self.temperature = weight, temperature
        s_mean, s_std = torch.tensor(student_mean), torch.tensor(student_std)
        for index, card in enumerate(cards):
            t_mean, t_std = torch.tensor(card.mean), torch.tensor(card.std)
            # teacher_input = (student_input * s_std + s_mean - t_mean) / t_std
            self.register_buffer(f"scale_{index}", (s_std / t_std).view(1, -1, 1, 1))
            self.register_buffer(f"shift_{index}", ((s_mean - t_mean) / t_std).view(1, -1, 1, 1))

    def train(self, mode: bool = True) -> "DistillationLoss":
        super().train(mode)
        self.teachers.eval()  # their batch-norm statistics are fixed
        return self

    def _keep_student_features(self, module, inputs) -> None:
        self._student_features = inputs[0]

    def remove_hook(self) -> None:
        """Stop catching the student's features (a student reused with another loss must not feed this one)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def member_logits(self, index: int, images: torch.Tensor) -> torch.Tensor:
        """Teacher network ``index``'s (N, classes) float32 raw logits for the student's (N, C, H, W) batch."""
        return self.member_outputs(index, images)[0]

    def member_outputs(self, index: int, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher network ``index``'s float32 ``(logits (N, classes), pooled features (N, D))`` for the
        student's (N, C, H, W) batch; the features (timm's pre-logits) only with feature distillation, else None."""
        size = self.teacher_sizes[index]
        if size and tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=images.shape[-1] > size)
            images = images.contiguous(memory_format=torch.channels_last)
        scale, shift = getattr(self, f"scale_{index}"), getattr(self, f"shift_{index}")
        network = self.teachers[index]
        if self.feature_weight <= 0:
            return network(images * scale + shift).float(), None
        features = network.forward_head(network.forward_features(images * scale + shift), pre_logits=True)
        return network.get_classifier()(features).float(), features.float()

    def _weighted_mean(self, stacked: torch.Tensor) -> torch.Tensor:
        # Element-wise, not tensordot: a matrix product would run in float16 under CUDA autocast.
        weights = self.member_weights.view(-1, *([1] * (stacked.ndim - 1)))
        return (stacked * weights).sum(0) / self.member_weights.sum()

    @torch.no_grad()
    def teacher_targets(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's float32 ``(logits (N, classes), similarity (N, N))`` for the student's (N, C, H, W)
        batch: a single network's raw logits, or an averaged teacher's weighted mean log-probabilities;
        the similarity is :func:`batch_similarity` of the pooled features (an averaged teacher's: the
        members' weighted mean), None without feature distillation."""
        outputs = [self.member_outputs(i, images) for i in range(len(self.teachers))]
        similarity = None
        if self.feature_weight > 0:
            similarity = self._weighted_mean(torch.stack([batch_similarity(f) for _, f in outputs]))
        if not self.averaged:
            return outputs[0][0], similarity
        return self._weighted_mean(torch.stack([F.log_softmax(l, dim=1) for l, _ in outputs])), similarity

    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's (N, classes) float32 logits for the student's (N, C, H, W) batch (:meth:`teacher_targets`)."""
        return self.teacher_targets(images)[0]

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        hard = super().forward(logits, labels, images)
        t = self.temperature
        teacher_logits, teacher_similarity = self.teacher_targets(images)
        soft = F.kl_div(F.log_softmax(logits.float() / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                        log_target=True, reduction="batchmean") * t * t
        loss = (1.0 - self.weight) * hard + self.weight * soft
        if self.feature_weight > 0:
            if self._student_features is None or len(self._student_features) != len(logits):
                raise RuntimeError("no pooled features of the student for this batch (the loss must be given the "
                                   "logits of a forward pass of the network it was made with, once each)")
            features, self._student_features = self._student_features, None
            loss = loss + self.feature_weight * similarity_loss(batch_similarity(features), teacher_similarity)
        return loss


def batch_similarity(features: torch.Tensor) -> torch.Tensor:
    """The (N, N) float32 similarity of a batch's (N, D) features: the Gram matrix ``F Fᵀ`` with each row
    scaled to unit L2 norm (Tung & Mori 2019, eq. 2); comparable across networks of any width D. Computed
    in float32 under autocast too (a matrix product would otherwise run in float16 / bfloat16)."""
    with torch.autocast(device_type=features.device.type, enabled=False):
        features = features.float().flatten(1)
        return F.normalize(features @ features.t(), p=2, dim=1)


def similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving loss between two (N, N) batch similarities: ``‖G_s − G_t‖²_F / N²``
    (Tung & Mori 2019, eq. 3, one layer pair). Its values are small next to a cross-entropy (row-normalised
    matrices, divided by N²), hence weights of several units (``--feature-distill-weight 8`` was tried; the
    paper's CIFAR weight, 3000, sums several layer pairs)."""
    n = student.shape[0]
    return ((student.float() - teacher.float()) ** 2).sum() / (n * n)


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
                 preprocessing: str = PREPROCESSING_VERSION, resize: bool = False):
    """The teacher named by a model card JSON or a run folder (weights checked against the card's sha256),
    ready on ``device``, and its card: ``(network, ModelCard)``, or for an averaged model's card
    (``cxr_engine.models.ensemble_card``; members found beside it and checked against their pinned
    sha256) ``([member networks], EnsembleCard)``. ``ValueError`` when a network's classes or
    preprocessing version differ from the student's (the teacher sees the student's unnormalised
    model input), or its input size does, unless ``resize`` (the batch is then resized to each
    network's size, see :class:`DistillationLoss`); ``ModelError`` for an unreadable card."""
    card_path = card_path_of(card_path)
    card = load_card(card_path)
    cards = networks(card)
    for member in cards:
        where = card_path if member is card else f"{card_path} (member {member.name})"
        if member.preprocessing_version != preprocessing:
            raise ValueError(f"{where}: teacher preprocessing {member.preprocessing_version} differs from the "
                             f"student's {preprocessing}")
        if list(member.classes) != list(CLASSES):
            raise ValueError(f"{where}: teacher classes {member.classes} differ from {list(CLASSES)}")
        if member.input_size != input_size and not resize:
            raise ValueError(f"{where}: teacher input size {member.input_size} px differs from the student's "
                             f"{input_size} px; train the student at {member.input_size} px, or give --size-schedule "
                             f"{input_size}:EPOCHS (the teacher then sees each batch resized to its own size)")
    models = [load_model(member).to(device, memory_format=torch.channels_last) for member in cards]
    for member in cards:
        log.info("teacher %s (%s, sha256 %s…)", member.name, member.architecture, member.weights_sha256[:12])
    if isinstance(card, EnsembleCard):
        log.info("teacher: the average of %s", " + ".join(member.name for member in cards))
        return models, card
    return models[0], card


def make_criterion(args, student_mean: Sequence[float], student_std: Sequence[float],
                   device: torch.device, student: torch.nn.Module | None = None) -> torch.nn.Module:
    """The training loss ``args`` ask for: plain, or distilled when ``args.teacher`` is set (its pooled
    features too, from ``student``'s classifier input, when ``args.feature_distill_weight`` > 0)."""
    if not args.teacher:
        return HardLabelLoss(args.label_smoothing)
    # A student trained at several sizes sees the teacher at the teacher's own size.
    resize = bool(getattr(args, "size_schedule", None))
    teacher, card = load_teacher(args.teacher, args.size, device, getattr(args, "preprocessing", PREPROCESSING_VERSION),
                                 resize=resize)
    return DistillationLoss(teacher, card, student_mean, student_std, args.distill_weight, args.distill_temperature,
                            args.label_smoothing, getattr(args, "feature_distill_weight", 0.0), student).to(device)
