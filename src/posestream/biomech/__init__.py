"""Biomechanics outputs: OpenSim TRC/MOT, pixel-to-metre scaling, gap filling, derivatives, reports."""
