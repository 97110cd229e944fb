"""training.seeding: one seeding of every generator (train and evaluate share it), and a checkpoint's
generator state restored exactly."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.seeding import rng_state, seed_everything, set_rng_state  # noqa: E402


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_the_same_seed_gives_the_same_draws_from_every_generator():
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert all(a != b for a, b in zip(draws(), first))


def test_a_seed_beyond_numpys_range_is_taken_modulo_2_32():
    seed_everything(2**32 + 5)  # train.py seeds with seed + rank
    big = draws()
    seed_everything(5)
    assert draws()[1] == big[1]


def test_a_saved_state_resumes_the_same_draws():
    seed_everything(3)
    draws()
    state = rng_state()
    expected = draws()
    seed_everything(99)
    set_rng_state(state)
    assert draws() == expected


def test_train_and_evaluate_use_the_one_seeding():
    import training.evaluate as evaluate
    import training.train as train

    assert train.seed_everything is evaluate.seed_everything is seed_everything
