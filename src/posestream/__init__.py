"""posestream: real-time human pose estimation on video with ViTPose."""

__version__ = "0.1.0"
