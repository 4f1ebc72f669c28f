"""``posestream train``: fine-tune ViTPose on a COCO-format keypoint dataset (the ViTPose recipe).

``--keypoints K`` (default: the category's count) must match the annotations' category, whose
``keypoints`` names and ``skeleton`` define the set; with an init checkpoint of another K, the
backbone and decoder come from the checkpoint and the final 1x1/3x3 layer starts fresh.
"""

from __future__ import annotations

import argparse
import logging

from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.errors import InputError
from posestream.training.augment import NO_AUGMENT, AugmentConfig
from posestream.training.loop import TrainConfig, train

__all__ = ["add_arguments", "run", "DROP_PATH"]

log = logging.getLogger(__name__)

DROP_PATH = {"s": 0.3, "b": 0.3, "l": 0.5, "h": 0.55}  # drop_path_rate of the ViTPose configs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="training images folder")
    parser.add_argument("--annotations", required=True, help="training COCO person_keypoints JSON")
    parser.add_argument("--variant", required=True, help="ViTPose size: s, b, l or h")
    parser.add_argument("--decoder", choices=["classic", "simple"], default="classic")
    parser.add_argument(
        "--weights", help="initial weights (path or known name, e.g. vitpose-s-coco); default random"
    )
    parser.add_argument(
        "--keypoints", type=int, help="K; must match the annotations' category (default: its K)"
    )
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument(
        "--out", required=True, help="run folder: last.pth, best.pth, log.csv, curves.png, eval/"
    )
    parser.add_argument("--val-images", help="validation images folder (AP every epoch)")
    parser.add_argument("--val-annotations", help="validation COCO person_keypoints JSON")
    parser.add_argument("--lr", type=float, default=5e-4, help="base AdamW lr (ViTPose: 5e-4 at batch 512)")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument(
        "--layer-decay", type=float, help="layer-wise lr decay (default per variant: S .9 B .75 L .8 H .85)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, help="linear warm-up steps (default min(500, 5%% of the run))"
    )
    parser.add_argument(
        "--drop-path", type=float, help="stochastic depth rate (default per variant, as ViTPose)"
    )
    parser.add_argument("--no-augment", action="store_true", help="train on plain crops")
    parser.add_argument("--flip-test", action="store_true", help="validate with the flip test")
    parser.add_argument("--max-steps-per-epoch", type=int, help="cap an epoch (smoke runs)")
    parser.add_argument("--device", default="cpu", help="torch device (cuda enables fp16 autocast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pth")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from posestream.models.vitpose import build_vitpose, canonical_variant
    from posestream.models.weights import resolve_weights
    from posestream.training.checkpoints import load_init_weights

    if args.epochs < 1 or args.batch_size < 1:
        raise InputError(f"--epochs and --batch-size must be >= 1, got {args.epochs} and {args.batch_size}")
    if bool(args.val_images) != bool(args.val_annotations):
        raise InputError("give --val-images and --val-annotations together")
    try:
        variant = canonical_variant(args.variant)
    except ValueError as exc:
        raise InputError(f"--variant: {exc}") from None
    train_set = load_keypoint_dataset(args.images, args.annotations)
    val_set = load_keypoint_dataset(args.val_images, args.val_annotations) if args.val_images else None
    k = train_set.category.num_keypoints
    if args.keypoints is not None and args.keypoints != k:
        raise InputError(
            f"--keypoints {args.keypoints}, but {args.annotations} defines {k} keypoints "
            f"({', '.join(train_set.category.keypoints)})"
        )
    if val_set is not None and val_set.category.keypoints != train_set.category.keypoints:
        raise InputError(f"{args.val_annotations}: keypoint names differ from {args.annotations}")

    drop_path = DROP_PATH[variant] if args.drop_path is None else args.drop_path
    model = build_vitpose(variant, decoder=args.decoder, num_keypoints=k, drop_path_rate=drop_path)
    if args.resume:
        log.info("--resume: weights, optimizer and schedule come from %s/last.pth", args.out)
    else:
        path = resolve_weights(args.weights, variant) if args.weights else None
        if path is None:
            log.warning("training from random initialisation (no --weights)")
        else:
            load_init_weights(model, path)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        layer_decay=args.layer_decay,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        device=args.device,
        augment=NO_AUGMENT if args.no_augment else AugmentConfig(),
        flip_test=args.flip_test,
        max_steps_per_epoch=args.max_steps_per_epoch,
        progress=not args.no_progress,
    )
    result = train(model, train_set, args.out, config, val_set=val_set, resume=args.resume)
    last = result.epochs[-1] if result.epochs else {}
    summary = f"epoch {last.get('epoch')}: loss {last.get('train_loss', float('nan')):.3e}"
    if "val_AP" in last:
        summary += f", val AP {last['val_AP']:.3f} (best {result.best_ap:.3f})"
    print(f"{summary}\ncheckpoints: {result.last_path}, {result.best_path}")
    return 0
