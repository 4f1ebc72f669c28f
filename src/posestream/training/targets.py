"""UDP Gaussian heatmap targets and the weighted MSE loss of the ViTPose recipe.

Coordinate convention (UDP, Huang et al. 2020, as ``TopDownGenerateTarget(encoding='UDP')``): pixel
centres sit on integers, so the crop spans ``[0, W_in - 1]`` and the heatmap ``[0, w - 1]``; a joint at
crop pixel ``x`` lands on heatmap ``x * (w - 1) / (W_in - 1)`` (48 x 64 from 192 x 256: a stride of
191/47, not 4). The decoder's inverse UDP undoes exactly this.

Each target is ``exp(-((u - mu_x)^2 + (v - mu_y)^2) / (2 sigma^2))`` around the sub-pixel centre, cut to
the ``(6 sigma + 1)``-pixel square around the rounded centre (mmpose's window), zero elsewhere. A joint
gets weight 0 when it is unlabelled (``v == 0``) or its whole window falls off the heatmap.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["udp_heatmap_targets", "joints_mse_loss"]


def udp_heatmap_targets(
    joints_xy: np.ndarray,
    visible: np.ndarray,
    input_size_wh: tuple[int, int] = (192, 256),
    heatmap_size_wh: tuple[int, int] = (48, 64),
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets for one person.

    joints_xy: (K, 2) joint positions in crop pixels (input space); visible: (K,) labelled flags.
    Returns heatmaps (K, h, w) float32 in [0, 1] and weights (K,) float32 in {0, 1}.
    """
    w_in, h_in = input_size_wh
    w, h = heatmap_size_wh
    stride = np.array([(w_in - 1.0) / (w - 1.0), (h_in - 1.0) / (h - 1.0)])
    mu = np.asarray(joints_xy, np.float64) / stride  # (K, 2) sub-pixel centres on the heatmap
    centre = np.floor(mu + 0.5)  # rounded centre, as int(x + 0.5) in mmpose
    radius = 3 * sigma
    # Window [centre - 3 sigma, centre + 3 sigma + 1) must touch the heatmap, else the joint is dropped.
    on_map = (centre[:, 0] + radius + 1 > 0) & (centre[:, 1] + radius + 1 > 0)
    on_map &= (centre[:, 0] - radius < w) & (centre[:, 1] - radius < h)
    weights = ((np.asarray(visible) > 0) & on_map).astype(np.float32)

    u = np.arange(w, dtype=np.float64)[None, None, :]  # (1, 1, w)
    v = np.arange(h, dtype=np.float64)[None, :, None]  # (1, h, 1)
    dx = u - mu[:, 0, None, None]
    dy = v - mu[:, 1, None, None]
    gauss = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # (K, h, w)
    in_x = np.abs(u - centre[:, 0, None, None]) <= radius  # (K, 1, w)
    in_y = np.abs(v - centre[:, 1, None, None]) <= radius  # (K, h, 1)
    in_window = in_x & in_y  # (K, h, w)
    heatmaps = np.where(in_window, gauss, 0.0) * weights[:, None, None]
    return heatmaps.astype(np.float32), weights


def joints_mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """mmpose ``JointsMSELoss(use_target_weight=True)``: mean over N, K, h, w of ``(w * (pred - target))^2``.

    pred, target: (N, K, h, w); weight: (N, K). Computed in float32 (also under autocast).
    """
    wt = weight.float()[:, :, None, None]
    return ((pred.float() - target.float()) * wt).pow(2).mean()
