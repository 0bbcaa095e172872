import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairgen.common.errors import DataError
from fairgen.eval.reweighing import reweighing_table, reweighing_weights


def test_matches_hand_computation():
    # n=10; c=0: 4 samples (3 with y=1), c=1: 6 samples (1 with y=1); so n_y1 = 4, n_y0 = 6.
    c = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    y = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    table = reweighing_table(c, y)
    # w(c,y) = n_c * n_y / (n * n_cy)
    assert table[(0, 1)] == pytest.approx(4 * 4 / (10 * 3))
    assert table[(0, 0)] == pytest.approx(4 * 6 / (10 * 1))
    assert table[(1, 1)] == pytest.approx(6 * 4 / (10 * 1))
    assert table[(1, 0)] == pytest.approx(6 * 6 / (10 * 5))
    w = reweighing_weights(c, y)
    np.testing.assert_allclose(w, [16 / 30] * 3 + [2.4, 2.4] + [0.72] * 5)
    assert w.sum() == pytest.approx(10)


def test_already_independent_data_gets_unit_weights():
    c = [0, 0, 1, 1] * 3
    y = [0, 1, 0, 1] * 3
    np.testing.assert_allclose(reweighing_weights(c, y), 1.0)


def test_missing_cell_is_absent_from_table():
    table = reweighing_table([0, 0, 1], [1, 1, 0])
    assert set(table) == {(0, 1), (1, 0)}
    # n_c * n_y / (n * n_cy): (0,1) -> 2*2/(3*2), (1,0) -> 1*1/(3*1)
    assert table[(0, 1)] == pytest.approx(2 / 3)
    assert table[(1, 0)] == pytest.approx(1 / 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), max_size=200), st.randoms())
def test_weighted_data_has_c_independent_of_y(pairs, rnd):
    pairs = pairs + [(0, 0), (0, 1), (1, 0), (1, 1)]  # every cell occurs (else it cannot be weighted up)
    rnd.shuffle(pairs)
    c = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    w = reweighing_weights(c, y)
    total = w.sum()
    assert total == pytest.approx(len(c))
    for cv in (0, 1):
        # marginals are preserved ...
        assert w[c == cv].sum() / total == pytest.approx(np.mean(c == cv))
        for yv in (0, 1):
            # ... and the weighted joint factorises
            joint = w[(c == cv) & (y == yv)].sum() / total
            assert joint == pytest.approx(np.mean(c == cv) * np.mean(y == yv))


@pytest.mark.parametrize(
    "c, y, needle",
    [
        ([], [], "no samples"),
        ([0, 1], [0], "differ in length"),
        ([0, 2], [0, 1], "c must be 0/1, found 2 at position 1"),
        ([0, 1], [0, -1], "y must be 0/1"),
        ([[0, 1]], [[0, 1]], "one-dimensional"),
    ],
)
def test_bad_inputs(c, y, needle):
    with pytest.raises(DataError, match=needle):
        reweighing_weights(c, y)
