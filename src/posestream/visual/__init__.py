"""Drawing poses and the HUD onto frames (pure functions over numpy images)."""
