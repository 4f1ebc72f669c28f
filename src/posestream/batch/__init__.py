"""`posestream batch`: many videos through the `run` pipeline, spread over Ray tasks (``posestream[ray]``).

``inputs`` (files, folders, globs, manifests -> jobs) and ``layout`` (where outputs go, resume) do
not import Ray; ``driver`` (plan, submit, follow, summarise) and ``worker`` (one video per task) do
their Ray work through the ``ray`` module only when a batch runs.
"""
