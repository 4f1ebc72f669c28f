"""Targets, augmentation geometry, loss and optimizer of the fine-tuning recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestream.datasets.coco_keypoints import PersonInstance
from posestream.geometry.affine import warp_crops
from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.geometry.heatmaps import decode_heatmaps
from posestream.keypoints import get_keypoint_set
from posestream.models.vitpose import ViTPose
from posestream.training.augment import NO_AUGMENT, AugmentConfig, lower_body_mask, make_crop
from posestream.training.optim import build_optimizer, build_scheduler, layer_id, lr_factor
from posestream.training.targets import joints_mse_loss, udp_heatmap_targets

COCO = get_keypoint_set("coco")
COCO_KEYPOINTS = COCO.keypoints


def _person(rng: np.random.Generator, k: int = 17) -> PersonInstance:
    xyxy = np.array([140.0, 60.0, 260.0, 330.0], np.float32)
    xy = rng.uniform([150, 70], [250, 320], size=(k, 2))
    v = np.full((k, 1), 2.0)
    v[3] = 0  # one unlabelled joint
    return PersonInstance(1, 1, xyxy, np.hstack([xy, v]).astype(np.float32), 120.0 * 270.0, False)


FLIP_INDEX = COCO.flip_index


def test_udp_targets_decode_back_to_the_joints():
    """Encode with our targets, decode with the live decoder: the UDP conventions must agree."""
    rng = np.random.default_rng(0)
    person = _person(rng)
    crop, joints, visible = make_crop(
        np.zeros((400, 400, 3), np.uint8), person, FLIP_INDEX, lower_body_mask(COCO_KEYPOINTS), None,
        NO_AUGMENT,
    )
    target, weight = udp_heatmap_targets(joints, visible)
    assert target.shape == (17, 64, 48) and weight.tolist() == visible.tolist() and weight[3] == 0
    assert target[3].max() == 0 and np.all(target.max(axis=(1, 2))[visible > 0] > 0.8)
    center, scale = xyxy_to_center_scale(person.xyxy[None])
    decoded, _ = decode_heatmaps(target[None], center, scale)
    err = np.linalg.norm(decoded[0] - person.keypoints[:, :2], axis=1)[visible > 0]
    px_per_heatmap_px = scale[0, 1] / 63
    assert err.max() < 0.1 * px_per_heatmap_px  # DARK recovers a sigma-2 Gaussian to sub-pixel


def test_targets_drop_joints_whose_window_leaves_the_heatmap():
    joints = np.array([[95.0, 127.0], [-40.0, 100.0], [191.0 + 40, 100.0], [0.0, 0.0]])
    target, weight = udp_heatmap_targets(joints, np.ones(4))
    assert weight.tolist() == [1, 0, 0, 1]
    assert np.unravel_index(target[3].argmax(), target[3].shape) == (0, 0) and target[3, 0, 0] == 1.0


def test_plain_training_crop_is_the_inference_crop():
    image = np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    person = _person(np.random.default_rng(2))
    crop, _, _ = make_crop(image, person, FLIP_INDEX, lower_body_mask(COCO_KEYPOINTS), None, NO_AUGMENT)
    center, scale = xyxy_to_center_scale(person.xyxy[None])
    np.testing.assert_array_equal(crop, warp_crops(image, center, scale)[0])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_augmented_joints_follow_the_image(seed, flip):
    """Paint joint j as a 9x9 patch of grey 10 * (j + 1), joints on a 30 px grid; after flip, half-body,
    scale and rotation, the crop at each transformed joint shows the grey of the joint it came from."""
    grid = np.array([(150 + 30 * (i % 4), 80 + 50 * (i // 4)) for i in range(17)], np.float32)
    keypoints = np.hstack([grid, np.full((17, 1), 2.0, np.float32)])
    keypoints[3, 2] = 0
    person = PersonInstance(1, 1, np.array([140, 60, 260, 330], np.float32), keypoints, 120.0 * 270, False)
    image = np.zeros((400, 400, 3), np.uint8)
    for j, (x, y, v) in enumerate(keypoints):
        if v > 0:
            image[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5] = 10 * (j + 1)
    config = AugmentConfig(flip_prob=float(flip), half_body_prob=0.5, rotation_prob=1.0)
    rng = np.random.default_rng(100 + seed)
    crop, joints, visible = make_crop(image, person, FLIP_INDEX, lower_body_mask(COCO_KEYPOINTS), rng, config)
    checked = 0
    for j in np.flatnonzero(visible):
        x, y = np.round(joints[j]).astype(int)
        if 0 <= x < 192 and 0 <= y < 256:
            source = FLIP_INDEX[j] if flip else j
            assert crop[y, x, 0] == 10 * (source + 1), (j, crop[y, x, 0])
            checked += 1
    assert checked >= 4
    assert visible[FLIP_INDEX[3] if flip else 3] == 0


def test_flip_swaps_left_and_right():
    rng = np.random.default_rng(3)
    person = _person(rng)
    image = np.random.default_rng(4).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    lower = lower_body_mask(COCO_KEYPOINTS)
    plain, joints, visible = make_crop(image, person, FLIP_INDEX, lower, None, NO_AUGMENT)
    only_flip = AugmentConfig(1.0, 0.0, 0, 1.5, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(0)
    flipped, joints_f, visible_f = make_crop(image, person, FLIP_INDEX, lower, rng, only_flip)
    np.testing.assert_array_equal(flipped, plain[:, ::-1])
    left_wrist, right_wrist = COCO_KEYPOINTS.index("left_wrist"), COCO_KEYPOINTS.index("right_wrist")
    mirrored = [191 - joints[right_wrist, 0], joints[right_wrist, 1]]
    np.testing.assert_allclose(joints_f[left_wrist], mirrored, atol=1e-4)
    assert visible_f[4] == visible[3] == 0  # the unlabelled left_ear became the unlabelled right_ear


def test_weighted_mse_matches_formula_and_ignores_zero_weight():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 4, 5, generator=g), torch.rand(2, 3, 4, 5, generator=g)
    weight = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    pairs = [(n, k) for n in range(2) for k in range(3) if weight[n, k]]
    expected = sum(((pred[n, k] - target[n, k]) ** 2).mean() for n, k in pairs)
    assert joints_mse_loss(pred, target, weight).item() == pytest.approx(expected.item() / 6, rel=1e-6)
    pred2 = pred.clone()
    pred2[0, 1] += 100.0
    base = joints_mse_loss(pred, target, weight).item()
    assert joints_mse_loss(pred2, target, weight).item() == pytest.approx(base)


def test_layer_decay_groups_and_no_weight_decay():
    model = ViTPose(embed_dim=32, depth=3, num_heads=2, decoder="classic")
    assert layer_id("backbone.pos_embed", 3) == 0 and layer_id("backbone.blocks.2.attn.qkv.weight", 3) == 3
    assert layer_id("backbone.norm.weight", 3) == 4 and layer_id("head.conv.weight", 3) == 4
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.1, layer_decay=0.5)
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert by_param[id(params["head.conv.weight"])]["lr"] == pytest.approx(1e-3)
    assert by_param[id(params["backbone.patch_embed.proj.weight"])]["lr"] == pytest.approx(1e-3 * 0.5**4)
    assert by_param[id(params["backbone.blocks.0.mlp.fc1.weight"])]["lr"] == pytest.approx(1e-3 * 0.5**3)
    assert by_param[id(params["backbone.blocks.0.mlp.fc1.weight"])]["weight_decay"] == 0.1
    no_decay = (
        "backbone.pos_embed", "backbone.blocks.1.norm1.weight", "backbone.blocks.1.attn.qkv.bias", "head.bn1.weight",
    )  # fmt: skip
    for name in no_decay:
        assert by_param[id(params[name])]["weight_decay"] == 0.0, name
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(params)


def test_schedule_warmup_then_steps_at_170_and_200_of_210():
    assert lr_factor(0, 210, 10) == pytest.approx(0.001)
    assert lr_factor(5, 210, 10) == pytest.approx(1 - 0.5 * 0.999)
    assert [lr_factor(s, 210, 10) for s in (10, 169, 170, 199, 200, 209)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    model = ViTPose(embed_dim=32, depth=1, num_heads=2, decoder="simple")
    optimizer = build_optimizer(model, lr=1e-3, layer_decay=0.5)
    scheduler = build_scheduler(optimizer, total_steps=21, warmup_steps=2)
    head_lrs = []
    for _ in range(21):
        head_lrs.append(optimizer.param_groups[-1]["lr"])
        optimizer.step()
        scheduler.step()
    assert head_lrs[0] == pytest.approx(1e-6) and head_lrs[2] == pytest.approx(1e-3)
    assert head_lrs[-1] == pytest.approx(1e-5)
