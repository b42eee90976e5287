import numpy as np
import pytest

from algorithms.diffusion_forcing.scheduling import SCHEDULING_MATRICES, scheduling_matrix


@pytest.mark.parametrize("kind", [kind for kind in SCHEDULING_MATRICES if kind != "trapezoid"])
@pytest.mark.parametrize("horizon", [1, 2, 5, 6])
@pytest.mark.parametrize("steps", [1, 3, 10])
@pytest.mark.parametrize("uncertainty_scale", [0.5, 1.0, 3.0])
def test_matrix_invariants(kind: str, horizon: int, steps: int, uncertainty_scale: float) -> None:
    matrix = scheduling_matrix(kind, horizon, steps, uncertainty_scale)
    assert matrix.shape[1] == horizon
    assert matrix.dtype.kind == "i"
    assert np.all(matrix[0] == steps), "first row must be pure noise"
    assert np.all(matrix[-1] == 0), "every generated token must end clean"
    assert np.all(np.diff(matrix, axis=0) <= 0), "a token's level never increases"
    assert np.all(np.any(np.diff(matrix, axis=0) != 0, axis=1)), "every step changes some token"


def test_shapes_of_named_schedules() -> None:
    assert scheduling_matrix("full_sequence", 4, 5).shape == (6, 4)
    assert scheduling_matrix("autoregressive", 3, 2).tolist() == [
        [2, 2, 2],
        [1, 2, 2],
        [0, 2, 2],
        [0, 1, 2],
        [0, 0, 2],
        [0, 0, 1],
        [0, 0, 0],
    ]
    pyramid = scheduling_matrix("pyramid", 3, 4, 1.0)
    assert pyramid.shape == (7, 3)
    assert pyramid[2].tolist() == [2, 3, 4]


def test_pyramid_lags_by_whole_steps_rounding_down() -> None:
    """DF v1.5 takes int(t · uncertainty_scale): with 0.5, tokens 0 and 1 start together, then 2 and 3."""
    assert scheduling_matrix("pyramid", 4, 2, 0.5).tolist() == [
        [2, 2, 2, 2],
        [1, 1, 2, 2],
        [0, 0, 1, 1],
        [0, 0, 0, 0],
    ]


def test_trapezoid_symmetric_is_symmetric() -> None:
    matrix = scheduling_matrix("trapezoid_symmetric", 7, 4, 1.0)
    assert np.array_equal(matrix, matrix[:, ::-1])
    assert matrix[3, 0] == 1 and matrix[3, 3] == 4


def test_trapezoid_is_the_original_matrix_with_its_untouched_column() -> None:
    """DF v1.5's trapezoid for an even horizon (hand-derived from its loop): column 2 is never denoised."""
    assert scheduling_matrix("trapezoid", 4, 3, 1.0).tolist() == [
        [3, 3, 0, 3],
        [2, 3, 0, 3],
        [1, 2, 0, 2],
        [0, 1, 0, 1],
        [0, 0, 0, 0],
    ]


def test_unknown_matrix_lists_choices() -> None:
    with pytest.raises(ValueError, match="pyramid, full_sequence, autoregressive, trapezoid, trapezoid_symmetric"):
        scheduling_matrix("spiral", 3, 3)
