"""The graph runtime: channels, workers, metrics. Knows nothing about pose."""

from posestream.pipeline.graph import Graph, GraphResult, Many, Parallel, StageContext

__all__ = ["Graph", "GraphResult", "Many", "Parallel", "StageContext"]
