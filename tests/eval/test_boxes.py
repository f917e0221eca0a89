"""Box conventions and IoU (eval/boxes.py): the hand-computed anchors of protocol 2.3-2.5."""

import numpy as np
import pytest

from eval.boxes import (
    continuous_to_inclusive,
    contour_box,
    inclusive_to_continuous,
    iou_inclusive,
    max_iou_inclusive,
    rescale_boxes_wsolevaluation,
)
from eval.errors import InputError


def test_iou_hand_computed_8_over_27():
    # (1,2,5,6) has area 25, (3,1,4,5) area 10, intersection x 3..4 (2) * y 2..5 (4) = 8
    assert iou_inclusive(np.array([[1, 2, 5, 6]]), np.array([[3, 1, 4, 5]]))[0, 0] == 8 / 27


def test_iou_identical_and_zero_boxes_are_one():
    assert iou_inclusive([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 1.0
    assert iou_inclusive([[3, 4, 10, 12]], [[3, 4, 10, 12]])[0, 0] == 1.0


def test_iou_disjoint_is_zero_and_matrix_shape():
    m = iou_inclusive([[0, 0, 1, 1], [5, 5, 6, 6]], [[5, 5, 6, 6], [0, 0, 1, 1], [2, 2, 3, 3]])
    assert m.shape == (2, 3)
    np.testing.assert_array_equal(m, [[0, 1, 0], [1, 0, 0]])
    assert max_iou_inclusive([[0, 0, 1, 1]], [[0, 0, 3, 0], [0, 0, 1, 1]]) == 1.0


def test_iou_rejects_inverted_boxes():
    with pytest.raises(InputError):
        iou_inclusive([[5, 0, 4, 3]], [[0, 0, 1, 1]])


def test_rescale_rule_example():
    # protocol 2.5: box (1,2,4,3) in a 10x20 image resized to 35x10 gives (3,1,14,1)
    out = rescale_boxes_wsolevaluation(np.array([[1, 2, 4, 3]]), (10, 20), (35, 10))
    np.testing.assert_array_equal(out, [[3, 1, 14, 1]])


def test_contour_box_is_one_pixel_larger_unless_clipped():
    assert contour_box(2, 3, 4, 5, 224, 224) == (2, 3, 6, 8)
    assert contour_box(220, 0, 4, 224, 224, 224) == (220, 0, 223, 223)


def test_inclusive_continuous_round_trip():
    b = np.array([[0, 0, 0, 0], [3, 4, 10, 12]])
    np.testing.assert_array_equal(continuous_to_inclusive(inclusive_to_continuous(b), 20, 20), b)
