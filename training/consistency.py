"""Framing-consistency loss: one film, two framings, one call.

With ``--consistency-weight`` each training batch holds pairs (the film as curated, the same film
after a framing shift: ``training.data.ManifestDataset(framing_pairs=True)``), flattened to
(2N, C, H, W) with the two views of a film next to each other. The loss is the base criterion on
all 2N views plus ``weight`` times the Jensen-Shannon divergence between each pair's predicted
distributions: the consistency term of AugMix (Hendrycks et al., "AugMix: A Simple Data Processing
Method to Improve Robustness and Uncertainty", ICLR 2020, eq. 1), with two views instead of three.
The framing-shift test (``training.framing_shift``) counts calls that change between a film and its
reframed copy; this term trains exactly that agreement.

With ``anchor_on_clean`` (``--consistency-anchor``, with ``--teacher``) the distillation targets of
both views are the teacher's output on the film as curated: the framed view is taught the call the
teacher makes on the unframed film, so fine-tuning for framing keeps the teacher's decision function
(and the operating point chosen for it) on ordinary films instead of drifting from it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Views of each film in a consistency batch: as curated, framing-shifted.
VIEWS = 2


def jensen_shannon(logits: torch.Tensor) -> torch.Tensor:
    """Mean Jensen-Shannon divergence (nats) within groups of views.

    ``logits``: (N, V, K) float; returns a scalar: mean over N of
    (1/V) * sum_v KL(p_v || m), m = mean_v p_v, p_v = softmax(logits[:, v]).
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    log_m = torch.logsumexp(log_p, dim=1, keepdim=True) - torch.log(torch.tensor(float(logits.shape[1])))
    return (log_p.exp() * (log_p - log_m)).sum(-1).mean()


class FramingConsistencyLoss(torch.nn.Module):
    """``base(logits, labels repeated per view, images) + weight * jensen_shannon(pairs)``.

    ``logits``: (VIEWS * N, K); ``labels``: (N,) class indices; ``images``: (VIEWS * N, C, H, W),
    views of one film adjacent. ``base`` is the run's criterion (label-smoothed cross-entropy or
    distillation, ``training.distill``)."""

    def __init__(self, base: torch.nn.Module, weight: float, anchor_on_clean: bool = False):
        super().__init__()
        if weight <= 0:
            raise ValueError(f"consistency weight must be positive, got {weight}")
        self.base, self.weight, self.anchor_on_clean = base, float(weight), anchor_on_clean

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if logits.shape[0] != VIEWS * labels.shape[0]:
            raise ValueError(f"{logits.shape[0]} logits for {labels.shape[0]} labels: expected {VIEWS} views per film")
        if self.anchor_on_clean:
            # what the base criterion's teacher sees: each film's first (unframed) view, for both views
            pairs = images.view(labels.shape[0], VIEWS, *images.shape[1:])
            images = pairs[:, :1].expand_as(pairs).reshape(images.shape)
        hard = self.base(logits, labels.repeat_interleave(VIEWS), images)
        return hard + self.weight * jensen_shannon(logits.view(labels.shape[0], VIEWS, -1))
