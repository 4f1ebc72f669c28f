"""evaluation: COCO-format keypoint datasets, OKS AP through pycocotools, ``posestream eval``.

``dataset`` loads and validates the data, ``predict`` runs the live estimator over it, ``coco_eval``
scores the results and writes the reports, ``cli`` is the subcommand.
"""
