"""training.weight_average: one network from the weighted mean of runs' weights."""
from __future__ import annotations

import numpy as np
import pytest

from training.weight_average import averaged


def test_floats_are_the_weighted_mean_and_counters_the_first_runs():
    a = {"w": np.array([0.0, 2.0], dtype=np.float16), "bn.num_batches_tracked": np.array(5, dtype=np.int64)}
    b = {"w": np.array([1.0, 4.0], dtype=np.float32), "bn.num_batches_tracked": np.array(9, dtype=np.int64)}
    out = averaged([a, b], [0.75, 0.25])
    assert out["w"].dtype == np.float32 and out["w"].tolist() == [0.25, 2.5]
    assert int(out["bn.num_batches_tracked"]) == 5


@pytest.mark.parametrize("weights, match", [([0.5, 0.6], "sum to 1"), ([1.5, -0.5], "non-negative"), ([1.0], "one weight each")])
def test_weights_that_are_not_a_mean_are_refused(weights, match):
    a = {"w": np.zeros(2, dtype=np.float32)}
    with pytest.raises(ValueError, match=match):
        averaged([a, dict(a)], weights)


def test_networks_of_another_shape_are_refused():
    with pytest.raises(ValueError, match="differ"):
        averaged([{"w": np.zeros(2, np.float32)}, {"w": np.zeros(3, np.float32)}], [0.5, 0.5])
