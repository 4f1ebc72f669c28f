"""training: fine-tune ViTPose on COCO-format keypoint data (the ViTPose recipe)."""
