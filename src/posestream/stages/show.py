"""Show stage: a desktop window (needs an OpenCV build with a GUI; the CLI checks that first)."""

from __future__ import annotations

import cv2

from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["ShowSink"]

WINDOW = "posestream"
QUIT_KEYS = (ord("q"), 27)  # q, Esc


class ShowSink(StageBase):
    """Shows each rendered frame; closing the window or pressing q / Esc stops the graph cleanly."""

    name = "show"

    def __init__(self, on_quit) -> None:
        self.on_quit = on_quit

    def open(self, ctx) -> None:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)

    def process(self, packet: Packet) -> Packet:
        cv2.imshow(WINDOW, packet.annotated if packet.annotated is not None else packet.frame.image)
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            self.on_quit()
        return packet

    def close(self) -> None:
        cv2.destroyAllWindows()
