"""Box and mask geometry of the evaluation presets and the training transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from eval.boxes import rescale_boxes_wsolevaluation
from wsol.data.transforms import (
    PRESETS,
    centre_crop_offsets,
    cutmix_resize_size,
    encode_mask,
    follow_boxes,
    to_bounding_boxes,
    train_transform,
)


def test_section_2_5_rule_exact():
    # protocol 2.5: box (1,2,4,3) in a 10x20 image resized to 35x10 gives (3,1,14,1)
    got = rescale_boxes_wsolevaluation(np.array([[1, 2, 4, 3]]), (10, 20), (35, 10))
    assert got.tolist() == [[3, 1, 14, 1]]
    # the wsolevaluation preset applies the same rule in its square frame
    pre = PRESETS.get("wsolevaluation")
    assert pre.eval_boxes(np.array([[1, 2, 4, 3]]), (10, 20), 35).tolist() == [[3, 3, 14, 5]]


def test_resize_moves_continuous_boxes():
    img = Image.new("RGB", (10, 20))
    image, boxes = PRESETS.get("wsolevaluation").transform(35)(img, to_bounding_boxes(np.array([[1, 2, 4, 3]]), 10, 20))
    assert tuple(image.shape) == (3, 35, 35)
    # inclusive (1,2,4,3) = continuous (1,2,5,4); x * 3.5, y * 1.75
    np.testing.assert_allclose(boxes.numpy(), [[3.5, 3.5, 17.5, 7.0]], atol=1e-5)
    assert boxes.canvas_size == (35, 35)


def test_cutmix_geometry_hand_computed():
    assert cutmix_resize_size(224) == 256 and cutmix_resize_size(64) == 73
    assert centre_crop_offsets(256, 256, 224) == (16, 16)
    assert centre_crop_offsets(73, 73, 64) == (4, 4)  # round(4.5) == 4, as torchvision
    pre = PRESETS.get("cutmix")
    w, h = 100, 50
    box = np.array([[10, 5, 59, 44]])
    x0, x1 = 10 * 0.73 - 4, 60 * 0.73 - 4
    y0, y1 = 5 * 1.46 - 4, 45 * 1.46 - 4
    want = [math.floor(x0), math.floor(y0), math.ceil(x1) - 1, min(math.ceil(y1), 64) - 1]
    assert pre.eval_boxes(box, (w, h), 64).tolist() == [want] == [[3, 3, 39, 61]]
    # the v2 pipeline moves the continuous box the same way
    _, tb = pre.transform(64)(Image.new("RGB", (w, h)), to_bounding_boxes(box, w, h))
    np.testing.assert_allclose(tb.numpy(), [[x0, y0, x1, min(y1, 64)]], atol=1e-4)
    assert follow_boxes(tb).tolist() == [want]
    # the S=224 case: scale to 256, shift by -16, clip to [0, 223]
    assert pre.eval_boxes(np.array([[0, 0, 255, 255]]), (256, 256), 224).tolist() == [[0, 0, 223, 223]]
    assert pre.eval_boxes(np.array([[20, 30, 99, 129]]), (256, 256), 224).tolist() == [[4, 14, 83, 113]]


def test_cutmix_drops_boxes_outside_the_crop():
    pre = PRESETS.get("cutmix")
    out = pre.eval_boxes(np.array([[0, 0, 1, 1], [50, 20, 60, 30]]), (100, 50), 64)
    assert out.shape == (1, 4)
    assert pre.eval_boxes(np.array([[0, 0, 1, 1]]), (100, 50), 64).shape == (0, 4)


def _white_box_image(w: int, h: int, box: tuple[int, int, int, int]) -> Image.Image:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    arr[y0 : y1 + 1, x0 : x1 + 1] = 255
    return Image.fromarray(arr)


def _bright_box(image: torch.Tensor) -> tuple[int, int, int, int]:
    grey = image.as_subclass(torch.Tensor).mean(0).numpy()
    ys, xs = np.nonzero(grey > grey.min() + 0.5 * (grey.max() - grey.min()))
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize("kwargs", [dict(crop=False), dict(resize=80), dict()])
def test_train_transforms_boxes_follow_the_pixels(kwargs):
    torch.manual_seed(0)
    w, h, box = 96, 72, (20, 10, 59, 49)
    tf = train_transform(64, **kwargs)
    flips = set()
    for _ in range(12):
        img, tb = tf(_white_box_image(w, h, box), to_bounding_boxes(np.array([box]), w, h))
        assert tuple(img.shape) == (3, 64, 64) and img.dtype == torch.float32
        got = follow_boxes(tb)
        if len(got) == 0:
            continue
        bx = _bright_box(img)
        assert np.abs(np.array(bx) - got[0]).max() <= 1, (bx, got)
        flips.add(bool(bx[0] > 64 - 1 - bx[2]))
    assert len(flips) == 2  # both flipped and unflipped cases were seen


def test_flip_mirrors_the_box_exactly():
    torch.manual_seed(1)
    tf = train_transform(10, crop=False, flip=True)
    seen = set()
    for _ in range(20):
        _, tb = tf(Image.new("RGB", (10, 10)), to_bounding_boxes(np.array([[1, 2, 3, 7]]), 10, 10))
        seen.add(tuple(follow_boxes(tb)[0].tolist()))
    assert seen == {(1, 2, 3, 7), (6, 2, 8, 7)}


def test_normalization_values():
    img = Image.new("RGB", (4, 4), (255, 0, 128))
    out, _ = PRESETS.get("wsolevaluation").transform(4)(img, to_bounding_boxes(np.zeros((0, 4)), 4, 4))
    want = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(out[:, 0, 0].numpy(), want, rtol=1e-5)


def test_mask_encoding_protocol_3_2():
    inst1 = np.zeros((4, 4), np.uint8)
    inst1[0:2, 0:2] = 255
    inst2 = np.zeros((4, 4), np.uint8)
    inst2[3, 3] = 1  # any value > 0.5 counts
    ignore = np.zeros((4, 4), np.uint8)
    ignore[0:3, 0:3] = 255
    m = encode_mask([inst1, inst2], ignore, (8, 8))
    assert m.dtype == np.uint8 and m.shape == (8, 8)
    assert (m[0:4, 0:4] == 1).all() and (m[6:8, 6:8] == 1).all()
    assert (m[4:6, 0:6] == 255).all() and (m[0:4, 4:6] == 255).all()  # ignore minus fg
    assert m[7, 0] == 0 and m[0, 7] == 0
    assert set(np.unique(m)) == {0, 1, 255}
    cropped = encode_mask([inst1], None, (8, 8), crop=4)
    np.testing.assert_array_equal(cropped, encode_mask([inst1], None, (8, 8))[2:6, 2:6])


def test_presets_registry_and_describe():
    assert PRESETS.names() == ["wsolevaluation", "cutmix"]
    d = PRESETS.get("cutmix").describe(224)
    assert d["resize"] == [256, 256] and d["center_crop"] == 224
    assert PRESETS.get("wsolevaluation").describe(224)["center_crop"] is None
