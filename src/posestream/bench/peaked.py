"""A ViTPose whose heatmaps are peaked like a trained model's, without trained weights, and the
figures that judge a reduced precision against fp32 on it.

Random weights give flat heatmaps (peak ~0.2 over a near-constant field), so an argmax moves
across the whole crop for noise-sized changes and says nothing about bf16 or int8. Here the
backbone and deconvolutions keep their random weights and only the final 1x1 convolution is set,
in closed form (ridge regression over every heatmap pixel of real person crops), to map the
decoder's features onto Gaussian target heatmaps (sigma 2 heatmap px, the ViTPose target) at the
crops' ground-truth keypoints. The model then puts clear peaks on real crops, and reduced precision
is judged by how far those peaks move.

Displacements are in crop pixels (the 192x256 model input): keypoints are decoded with the
pipeline's own decoder (argmax + DARK) through a unit-scale box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["fit_peaked_head", "gaussian_targets", "compare_heatmaps", "PrecisionFigures", "decode_crop_keypoints"]

SIGMA = 2.0  # heatmap px, as in ViTPose's training targets


def gaussian_targets(keypoints_crop: np.ndarray, heatmap_hw: tuple[int, int], input_hw: tuple[int, int]):
    """(N, K, 3) crop-pixel keypoints ``x, y, v`` -> (N, K, h, w) float32 Gaussians (0 where v == 0)."""
    h, w = heatmap_hw
    in_h, in_w = input_hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x = keypoints_crop[..., 0] * (w - 1) / (in_w - 1)  # UDP: corners map to corners
    y = keypoints_crop[..., 1] * (h - 1) / (in_h - 1)
    d2 = (xs - x[..., None, None]) ** 2 + (ys - y[..., None, None]) ** 2
    targets = np.exp(-d2 / (2 * SIGMA**2)).astype(np.float32)
    targets *= (keypoints_crop[..., 2] > 0)[..., None, None]
    return targets


def fit_peaked_head(model, crops: np.ndarray, keypoints_crop: np.ndarray, ridge: float = 1e-3) -> dict:
    """Set ``model.head.conv`` (a classic-decoder ViTPose) so its heatmaps fit Gaussians at the keypoints.

    crops: (N, 3, H, W) float32 model inputs. keypoints_crop: (N, K, 3) ``x, y, v`` in crop pixels.
    Only labelled keypoints' targets are non-zero; every pixel of every crop is a sample. Returns
    fit facts: samples, the fitted heatmaps' mean peak at labelled keypoints and the mean
    background level (peaks well above the background = sharp).
    """
    import torch

    head = model.head
    if not hasattr(head, "deconv2"):
        raise ValueError("fit_peaked_head: needs the classic decoder (deconvolutions + 1x1 conv)")
    model.eval()
    c = head.conv.in_channels
    gram = np.zeros((c + 1, c + 1), np.float64)
    cross = np.zeros((c + 1, head.conv.out_channels), np.float64)
    heatmap_hw = model.heatmap_size_hw
    targets = gaussian_targets(keypoints_crop, heatmap_hw, model.img_size_hw)  # (N, K, h, w)
    with torch.inference_mode():
        for start in range(0, len(crops), 8):
            x = torch.from_numpy(crops[start : start + 8])
            f = model.backbone(x)
            f = torch.relu(head.bn1(head.deconv1(f)))
            f = torch.relu(head.bn2(head.deconv2(f)))  # (B, C, h, w)
            feats = f.permute(0, 2, 3, 1).reshape(-1, c).double().numpy()
            feats = np.concatenate([feats, np.ones((len(feats), 1))], axis=1)  # bias column
            t = targets[start : start + 8].transpose(0, 2, 3, 1).reshape(-1, targets.shape[1])
            gram += feats.T @ feats
            cross += feats.T @ t
    scale = np.trace(gram) / len(gram)
    weights = np.linalg.solve(gram + ridge * scale * np.eye(len(gram)), cross)  # (C + 1, K)
    with torch.no_grad():
        head.conv.weight.copy_(torch.from_numpy(weights[:-1].T.astype(np.float32))[..., None, None])
        head.conv.bias.copy_(torch.from_numpy(weights[-1].astype(np.float32)))
        fitted = model(torch.from_numpy(crops[: min(16, len(crops))])).numpy()
    labelled = keypoints_crop[: len(fitted), :, 2] > 0
    peaks = fitted.reshape(*fitted.shape[:2], -1).max(-1)
    return {
        "samples": int(len(crops) * heatmap_hw[0] * heatmap_hw[1]),
        "mean_peak": float(peaks[labelled].mean()),
        "mean_background": float(np.median(fitted)),
    }


def decode_crop_keypoints(heatmaps: np.ndarray, input_hw: tuple[int, int] = (256, 192)) -> np.ndarray:
    """(N, K, h, w) -> (N, K, 2) keypoints in crop pixels, with the pipeline's decoder (argmax + DARK)."""
    from posestream.geometry.heatmaps import decode_heatmaps

    in_h, in_w = input_hw
    n = len(heatmaps)
    center = np.tile(np.array([[in_w / 2, in_h / 2]], np.float64), (n, 1))
    scale = np.tile(np.array([[in_w, in_h]], np.float64), (n, 1))  # unit scale: frame px = crop px
    keypoints, _ = decode_heatmaps(heatmaps.astype(np.float32), center, scale, (in_w, in_h))
    return keypoints


@dataclass(frozen=True, slots=True)
class PrecisionFigures:
    """A precision against fp32 on the same crops: keypoint displacement (crop px) and heatmap deviation."""

    mean_px: float
    p95_px: float
    max_px: float
    heatmap_max_dev: float  # max |h - h_fp32| / max |h_fp32|
    heatmap_mean_dev: float  # mean |h - h_fp32| / max |h_fp32|

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 4) for k in self.__slots__}


def compare_heatmaps(reference: np.ndarray, other: np.ndarray, labelled: np.ndarray | None = None) -> PrecisionFigures:
    """Figures of ``other`` against ``reference`` (both (N, K, h, w)); ``labelled`` (N, K) bool limits
    the keypoints compared (default all)."""
    ref_kp, got_kp = decode_crop_keypoints(reference), decode_crop_keypoints(other)
    shift = np.linalg.norm(got_kp - ref_kp, axis=-1)  # (N, K)
    if labelled is not None:
        shift = shift[labelled]
    peak = float(np.abs(reference).max())
    dev = np.abs(other.astype(np.float64) - reference)
    return PrecisionFigures(
        mean_px=float(shift.mean()),
        p95_px=float(np.percentile(shift, 95)),
        max_px=float(shift.max()),
        heatmap_max_dev=float(dev.max() / peak),
        heatmap_mean_dev=float(dev.mean() / peak),
    )
