"""The fine-tuning loop: epochs of weighted-MSE steps, per-epoch OKS AP, checkpoints, resume, logs.

One optimizer step per batch (AdamW + layer decay, per-step LambdaLR, grad-norm clip 1.0, fp16
autocast + GradScaler on CUDA only). After every epoch: the validation set goes through the same
``TopDownEstimator`` as the live pipeline (``posestream.evaluation``), then ``RUN_DIR`` gets

- ``last.pth``: ``{'state_dict', 'meta', 'optimizer', 'scheduler', 'scaler', 'epoch', 'step',
  'best_ap', 'history'}``; ``best.pth`` (highest validation AP, or the last epoch without a
  validation set): ``{'state_dict', 'meta'}``. ``state_dict`` is our ViTPose layout, so
  ``posestream.models.checkpoint.load_weights`` and ``posestream export --weights`` read both;
  ``meta`` holds variant, decoder, K, keypoint names, skeleton, sigmas and the architecture numbers
  and the whole ``KeypointSet`` (``models.trained.load_checkpoint_model`` rebuilds the model, also a
  non-standard one).
- ``log.csv`` (one row per epoch), ``steps.csv`` (one per step), ``curves.png``, and
  ``eval/epoch_NNN.{json,md}`` reports.

Resume (``resume=True``) restores model, optimizer, scheduler, scaler, step and epoch from
``last.pth`` and continues; augmentation draws and the shuffle order are functions of
``(seed, epoch)``, so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from posestream.datasets.coco_keypoints import KeypointDataset
from posestream.errors import InputError
from posestream.evaluation.coco_eval import EvalReport, evaluate_results
from posestream.evaluation.predict import FlipTestBackend, predict_dataset
from posestream.models.trained import torch_load
from posestream.runtime.base import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, ModelInfo
from posestream.training.augment import AugmentConfig
from posestream.training.checkpoints import model_meta, save_checkpoint
from posestream.training.data import TopDownTrainDataset
from posestream.training.optim import LAYER_DECAY, build_optimizer, build_scheduler
from posestream.training.targets import joints_mse_loss

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "evaluate_model",
]

log = logging.getLogger(__name__)



@dataclass
class TrainConfig:
    """Hyper-parameters of one run (defaults: the ViTPose recipe, scaled to the run's length).

    layer_decay: None = the variant's value from ``optim.LAYER_DECAY`` (0.75 for a custom model).
    warmup_steps: None = ``min(500, 5 % of the steps)``.
    stop_after_epochs: end this call after that many epochs (checkpoints written as usual), as if
        interrupted; a later ``resume=True`` call continues the same schedule.
    max_steps_per_epoch: cap the steps of an epoch (smoke runs); None = the whole dataset.
    """

    epochs: int
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.1
    layer_decay: float | None = None
    warmup_steps: int | None = None
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    flip_test: bool = False
    stop_after_epochs: int | None = None
    max_steps_per_epoch: int | None = None
    progress: bool = True


@dataclass
class TrainResult:
    step_losses: list[float]
    epochs: list[dict]
    last_path: Path
    best_path: Path
    best_ap: float | None


# ------------------------------------------------------------------------------------- evaluation


def evaluate_model(
    model: nn.Module,
    dataset: KeypointDataset,
    device: str = "cpu",
    flip_test: bool = False,
    progress: bool = False,
    meta: dict | None = None,
) -> EvalReport:
    """OKS AP of a PyTorch model on ground-truth boxes, through the live pipeline's estimator."""
    from posestream.estimation.topdown import TopDownEstimator
    from posestream.runtime.factory import open_pose_backend

    info = ModelInfo(variant=getattr(model, "variant", ""), keypoint_set=dataset.category.keypoint_set)
    backend = open_pose_backend(model, device=device, precision="fp32", info=info)  # puts the model in eval mode
    if flip_test:
        backend = FlipTestBackend(backend, dataset.category.flip_index)
    results = predict_dataset(TopDownEstimator(backend), dataset, boxes="gt", progress=progress)
    return evaluate_results(dataset, results, meta={"boxes": "gt", "flip_test": flip_test, **(meta or {})})


# ------------------------------------------------------------------------------------- training


def _check_model(model: nn.Module, dataset: KeypointDataset) -> None:
    k = dataset.category.num_keypoints
    if model.num_keypoints != k:
        raise InputError(
            f"the model predicts {model.num_keypoints} keypoints but {dataset.annotations_path} defines {k} "
            f"({', '.join(dataset.category.keypoints)})"
        )


def train(
    model: nn.Module,
    train_set: KeypointDataset,
    out_dir: str | Path,
    config: TrainConfig,
    val_set: KeypointDataset | None = None,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune ``model`` on ``train_set``; see the module docstring for what lands in ``out_dir``."""
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pth", out_dir / "best.pth"
    _check_model(model, train_set)
    if val_set is not None:
        _check_model(model, val_set)
    if resume and not last_path.is_file():
        raise InputError(f"--resume: {last_path} does not exist (nothing to resume)")
    if not resume and last_path.exists():
        raise InputError(f"{out_dir} already holds a run ({last_path}); pass --resume or choose another")
    out_dir.mkdir(parents=True, exist_ok=True)

    device = torch.device(config.device)
    use_amp = config.amp and device.type == "cuda"
    model.to(device)
    data = TopDownTrainDataset(
        train_set, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, config.augment, seed=config.seed
    )
    if len(data) == 0:
        raise InputError(f"{train_set.annotations_path}: no person with labelled keypoints to train on")
    batch_size = min(config.batch_size, len(data))
    steps_per_epoch = len(data) // batch_size  # drop_last: BatchNorm and the loss see full batches
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total_steps = steps_per_epoch * config.epochs

    variant = getattr(model, "variant", "custom")
    layer_decay = config.layer_decay if config.layer_decay is not None else LAYER_DECAY.get(variant, 0.75)
    optimizer = build_optimizer(model, config.lr, config.weight_decay, layer_decay)
    scheduler = build_scheduler(optimizer, total_steps, config.warmup_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    meta = model_meta(model, train_set.category.keypoint_set)
    meta["train_config"] = {k: v for k, v in asdict(config).items() if isinstance(v, (int, float, str, bool))}

    start_epoch, step, best_ap = 0, 0, None
    step_losses: list[float] = []
    epochs: list[dict] = []
    if resume:
        ckpt = torch_load(last_path)
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step, best_ap = int(ckpt["epoch"]), int(ckpt["step"]), ckpt["best_ap"]
        step_losses = list(ckpt["history"]["step_losses"])
        epochs = list(ckpt["history"]["epochs"])
        log.info("resumed %s at epoch %d, step %d", last_path, start_epoch, step)

    end_epoch = config.epochs
    if config.stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + config.stop_after_epochs)
    log.info(
        "training %d people, batch %d, %d steps/epoch, epochs %d..%d of %d, device %s%s",
        len(data), batch_size, steps_per_epoch, start_epoch + 1, end_epoch, config.epochs, device,
        " (fp16 autocast)" if use_amp else "",
    )  # fmt: skip

    for epoch in range(start_epoch, end_epoch):
        t0 = time.monotonic()
        torch.manual_seed(config.seed * 100003 + epoch)  # drop-path draws
        data.set_epoch(epoch)
        order = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=True, drop_last=True, generator=order,
            num_workers=config.num_workers,
        )  # fmt: skip
        model.train()
        losses = []
        desc = f"epoch {epoch + 1}/{config.epochs}"
        bar = tqdm(total=steps_per_epoch, desc=desc, disable=not config.progress)
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch:
                break
            images = batch["image"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            weight = batch["target_weight"].to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = joints_mse_loss(model(images), target, weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step} (lower --lr?)")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            losses.append(float(loss.item()))
            step_losses.append(losses[-1])
            bar.set_postfix(loss=f"{losses[-1]:.2e}")
            bar.update()
        bar.close()

        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            "lr": optimizer.param_groups[-1]["lr"],
        }
        is_best = val_set is None
        if val_set is not None:
            meta_eval = {"epoch": epoch + 1}
            report = evaluate_model(model, val_set, config.device, config.flip_test, meta=meta_eval)
            report.write(out_dir / "eval", stem=f"epoch_{epoch + 1:03d}")
            row.update({f"val_{k}": v for k, v in report.stats.items() if k in ("AP", "AP50", "AP75", "AR")})
            is_best = best_ap is None or report.ap > best_ap
            best_ap = report.ap if is_best else best_ap
        row["seconds"] = round(time.monotonic() - t0, 2)
        epochs.append(row)
        text = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        log.info("%s", text)

        meta_now = {**meta, "epoch": epoch + 1, "step": step}
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_checkpoint(last_path, {
            "state_dict": state, "meta": meta_now, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
            "step": step, "best_ap": best_ap, "history": {"step_losses": step_losses, "epochs": epochs},
        })  # fmt: skip
        if is_best:
            save_checkpoint(best_path, {"state_dict": state, "meta": meta_now})
        _write_logs(out_dir, step_losses, epochs)
    return TrainResult(step_losses, epochs, last_path, best_path, best_ap)


def _write_logs(out_dir: Path, step_losses: list[float], epochs: list[dict]) -> None:
    """Rewrite steps.csv, log.csv and curves.png from the full history (consistent after resume)."""
    with open(out_dir / "steps.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss"])
        writer.writerows((i + 1, f"{v:.6g}") for i, v in enumerate(step_losses))
    columns = list(dict.fromkeys(k for row in epochs for k in row))
    with open(out_dir / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(epochs)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=0.8)
    ax_loss.set(xlabel="step", ylabel="weighted heatmap MSE", yscale="log", title="training loss")
    aps = [(row["epoch"], row["val_AP"]) for row in epochs if "val_AP" in row]
    if aps:
        ax_ap.plot(*zip(*aps), marker="o")
    ax_ap.set(xlabel="epoch", ylabel="OKS AP", title="validation AP (GT boxes)")
    fig.tight_layout()
    fig.savefig(out_dir / "curves.png", dpi=80)
    plt.close(fig)
