"""Clip data: feature and event clips as arrays, streamed rows, and clip scores from per-frame outputs."""
