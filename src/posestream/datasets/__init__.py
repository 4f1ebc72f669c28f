"""datasets: COCO-format keypoint data (images + annotations), shared by evaluation and training."""
