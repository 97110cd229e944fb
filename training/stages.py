"""Progressive resizing: which input size each epoch of a run trains and validates at.

A network trained from scratch on the CPU learns its coarse features as well at 128–160 px as at
224 px, in a third to a half of the time per image; the last passes at the bundled model's input
size adapt it to the finer scale it will be used at (Tan & Le 2021, "EfficientNetV2", section 4.2;
Touvron et al. 2019, "Fixing the train-test resolution discrepancy").

``SizeSchedule.parse("128:10,160:12,224:4")`` trains epochs 1–10 at 128 px, 11–22 at 160 px and
23–26 at 224 px. The learning-rate schedule spans all of them (``training.train.lr_factor``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSchedule:
    """(input size in px, number of epochs) stages, in training order."""

    stages: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> "SizeSchedule":
        """``"SIZE:EPOCHS,SIZE:EPOCHS,..."``; ``ValueError`` naming the bad stage otherwise."""
        stages = []
        for part in text.split(","):
            size, sep, epochs = part.strip().partition(":")
            try:
                stage = (int(size), int(epochs))
            except ValueError:
                stage = None
            if not sep or stage is None or stage[0] < 32 or stage[1] < 1:
                raise ValueError(f"size schedule stage {part.strip()!r}: expected SIZE:EPOCHS with SIZE >= 32 px "
                                 "and EPOCHS >= 1, e.g. 128:10,160:12,224:4")
            stages.append(stage)
        return cls(tuple(stages))

    @classmethod
    def constant(cls, size: int, epochs: int) -> "SizeSchedule":
        return cls(((size, epochs),))

    @property
    def epochs(self) -> int:
        return sum(epochs for _, epochs in self.stages)

    @property
    def final_size(self) -> int:
        return self.stages[-1][0]

    def size_for_epoch(self, epoch: int) -> int:
        """Input size of 1-based ``epoch``; epochs past the schedule stay at the final size."""
        end = 0
        for size, epochs in self.stages:
            end += epochs
            if epoch <= end:
                return size
        return self.final_size

    def __str__(self) -> str:
        return ",".join(f"{size}:{epochs}" for size, epochs in self.stages)
