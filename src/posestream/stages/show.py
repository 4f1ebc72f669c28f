"""Show stage: a desktop window (needs an OpenCV build with a GUI; ``check_gui`` says so first)."""

from __future__ import annotations

import cv2

from posestream.errors import InputError
from posestream.pipeline.graph import StageContext
from posestream.stages.base import StageBase
from posestream.stages.render import HudMeter
from posestream.types import Packet
from posestream.visual.draw import add_strip

__all__ = ["ShowSink", "check_gui"]

WINDOW = "posestream"
QUIT_KEYS = (ord("q"), 27)  # q, Esc


def check_gui() -> None:
    """Raise InputError unless this OpenCV build can open windows."""
    info = cv2.getBuildInformation()
    gui = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.strip().startswith("GUI:")), "NONE")
    if gui.upper() == "NONE":
        raise InputError(
            "--show needs an OpenCV build with a GUI, and this one (opencv-python-headless) has none: "
            "use --serve 127.0.0.1:8080 and open the page in a browser"
        )


class ShowSink(StageBase):
    """Shows each rendered frame (with the HUD strip when ``hud``); closing the window or pressing
    q / Esc stops the graph cleanly through the stage context."""

    name = "show"

    def __init__(self, *, hud: bool = True) -> None:
        check_gui()
        self.hud = HudMeter() if hud else None
        self._request_stop = None

    def open(self, ctx: StageContext) -> None:
        self._request_stop = ctx.request_stop
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)

    def process(self, packet: Packet) -> Packet:
        image = packet.annotated if packet.annotated is not None else packet.frame.image
        if self.hud is not None:
            image = add_strip(image, self.hud.lines(packet))
        cv2.imshow(WINDOW, image)
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            self._request_stop()
        return packet

    def close(self) -> None:
        cv2.destroyAllWindows()
