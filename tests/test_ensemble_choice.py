"""training.ensemble_choice: the average of runs' log-probabilities that validation compares."""
import numpy as np
import pytest

from cxr_engine.models.ensemble import log_softmax
from training.ensemble_choice import average, table


def test_log_softmax_matches_its_definition_and_is_shift_invariant():
    z = np.array([[2.0, 0.5, -1.0], [1000.0, 999.0, 998.0]])
    expected = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    assert np.allclose(log_softmax(z), expected)
    assert np.allclose(np.exp(log_softmax(z)).sum(axis=1), 1.0)
    assert np.allclose(log_softmax(z + 7.0), log_softmax(z))


def test_average_is_the_geometric_mean_of_the_members_probabilities():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    pa, pb = np.exp(log_softmax(a)), np.exp(log_softmax(b))
    geometric = np.sqrt(pa * pb)
    got = np.exp(average([a, b]))
    assert np.allclose(got / got.sum(1, keepdims=True), geometric / geometric.sum(1, keepdims=True))
    assert np.allclose(average([a]), log_softmax(a))


def test_average_can_overturn_a_single_members_call():
    confident_covid = np.array([[0.0, 0.0, 3.0]])
    confident_normal = np.array([[5.0, 0.0, 0.0]])
    assert average([confident_covid, confident_normal]).argmax() == 0


@pytest.mark.parametrize("violation, met", [(0.0, "yes"), (0.01, "no")])
def test_table_says_whether_the_constraints_are_met(violation, met):
    result = {"offsets": [0.0, 0.5, -0.25],
              "operating_point": {"accuracy": 0.93, "f1": [0.94, 0.92, 0.91], "adult_pneumonia_recall": 0.8,
                                  "adult_normal_called_covid": 0.02, "pediatric_normal_called_pneumonia": 0.04,
                                  "violation": violation},
              "framing": {"worst": 0.041}}
    row = table({"a+b": result})[2]
    assert row.startswith("| `a+b` | +0.000 / +0.500 / -0.250 | 0.930 |") and f"| {met} | 0.041 |" in row
