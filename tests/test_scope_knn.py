"""training.scope_score's nearest-neighbour score (Sun et al. 2022), checked by hand on small features."""
from __future__ import annotations

import numpy as np
import pytest

from training.scope_score import NearestNeighbours


def test_the_score_is_one_minus_the_cosine_similarity_to_the_kth_nearest_training_film():
    bank = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], dtype=np.float32)
    query = np.array([[2.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    for k in (1, 2, 3):
        expected = [1 - sorted((cos(q, b) for b in bank), reverse=True)[k - 1] for q in query]
        np.testing.assert_allclose(NearestNeighbours(bank, k).score(query), expected, atol=1e-6)
    # Scale does not count: a feature vector and twice it score alike.
    near = NearestNeighbours(bank, 1)
    np.testing.assert_allclose(near.score(query), near.score(3 * query), atol=1e-6)
    assert near.score(bank[:1])[0] == pytest.approx(0.0, abs=1e-6), "a training film is its own nearest"


@pytest.mark.parametrize("k", [0, 4])
def test_k_outside_the_training_films_is_refused(k):
    with pytest.raises(ValueError, match="--knn-k"):
        NearestNeighbours(np.ones((3, 2), dtype=np.float32), k)
