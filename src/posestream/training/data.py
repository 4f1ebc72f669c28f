"""Torch dataset of person instances for top-down training (crop, normalise, targets)."""

from __future__ import annotations

import numpy as np
import torch

from posestream.datasets.coco_keypoints import KeypointDataset, load_image
from posestream.geometry.affine import to_model_input
from posestream.training.augment import AugmentConfig, lower_body_mask, make_crop
from posestream.training.targets import udp_heatmap_targets

__all__ = ["TopDownTrainDataset"]


class TopDownTrainDataset(torch.utils.data.Dataset):
    """Every non-crowd person with a labelled keypoint, as ``(image, target, target_weight)``.

    image: (3, H_in, W_in) float32, ``(RGB - mean) / std``; target: (K, h, w) float32 UDP Gaussians;
    target_weight: (K,) float32. Augmentation draws come from ``np.random.default_rng((seed, epoch,
    index))``: the same sample of the same epoch is the same crop in any process or worker, so a
    resumed run sees exactly the data a continuous run would (call ``set_epoch`` each epoch).
    ``augment=None`` gives the plain inference crop.
    """

    def __init__(
        self,
        dataset: KeypointDataset,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        augment: AugmentConfig | None = AugmentConfig(),
        seed: int = 0,
        input_size_wh: tuple[int, int] = (192, 256),
        heatmap_size_wh: tuple[int, int] = (48, 64),
        sigma: float = 2.0,
    ) -> None:
        self.dataset = dataset
        self.people = dataset.keypoint_instances()
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.input_size_wh = tuple(input_size_wh)
        self.heatmap_size_wh = tuple(heatmap_size_wh)
        self.sigma = sigma
        self.flip_index = dataset.category.flip_index
        self.lower = lower_body_mask(dataset.category.keypoints)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.people)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        person = self.people[index]
        image = load_image(self.dataset.images[person.image_id].path)
        rng = None if self.augment is None else np.random.default_rng((self.seed, self.epoch, index))
        crop, joints, visible = make_crop(
            image, person, self.flip_index, self.lower, rng, self.augment or AugmentConfig(),
            self.input_size_wh,
        )
        target, weight = udp_heatmap_targets(
            joints, visible, self.input_size_wh, self.heatmap_size_wh, self.sigma
        )  # (K, h, w), (K,)
        x = to_model_input(crop[None], self.mean, self.std, color_order="RGB")[0]  # (3, H, W)
        return {
            "image": torch.from_numpy(x),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
        }
