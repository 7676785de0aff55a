"""The closing summary of an extraction or an import: what a run did, per clip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

@dataclasses.dataclass
class Summary:
    """What a run did; :meth:`lines` is the closing summary a user reads."""

    store_dir: Path
    clips_total: int = 0
    clips_done: int = 0  # with features in the store (or in chunks, for a shard)
    clips_this_run: int = 0
    frames_this_run: int = 0
    seconds: float = 0.0
    clips_skipped: dict = dataclasses.field(default_factory=dict)
    clips_failed: dict = dataclasses.field(default_factory=dict)
    clips_padded: dict = dataclasses.field(default_factory=dict)
    # damaged videos whose decodable frames were used (frames.allow_short_reads); a
    # damaged video without that setting is in clips_failed
    clips_damaged: dict = dataclasses.field(default_factory=dict)
    chunks_done: int = 0
    chunks_total: int = 0
    complete: bool = False
    warnings: list = dataclasses.field(default_factory=list)
    sides: dict = dataclasses.field(default_factory=dict)  # side -> clips in the store
    shape: tuple = ()
    dtype: str = ""
    allow_failures: bool = False
    note: str = ""

    @property
    def fps(self):
        return self.frames_this_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self):
        return 1 if self.clips_failed and not self.allow_failures else 0

    def lines(self):
        out = ["extraction summary:"]
        if self.note:
            out.append(f"  {self.note}")
        out.append(
            f"  clips: {self.clips_total} listed, {self.clips_done} done "
            f"({self.clips_this_run} in this run), {len(self.clips_skipped)} skipped, "
            f"{len(self.clips_failed)} failed, {len(self.clips_padded)} padded"
            + (f", {len(self.clips_damaged)} damaged (used as far as they decode)" if self.clips_damaged else "")
        )
        if self.frames_this_run:
            out.append(
                f"  speed: {self.frames_this_run} frames in {self.seconds:.1f} s "
                f"({self.fps:.1f} frames/s)"
            )
        for clip_id, reason in list(self.clips_failed.items())[:20]:
            out.append(f"  failed: {clip_id}: {reason}")
        if len(self.clips_failed) > 20:
            out.append(f"  ... and {len(self.clips_failed) - 20} more failed clips")
        for clip_id, reason in list(self.clips_damaged.items())[:20]:
            out.append(f"  damaged, used: {clip_id}: {reason}")
        for clip_id, reason in list(self.clips_skipped.items())[:5]:
            out.append(f"  skipped: {clip_id}: {reason}")
        if self.complete:
            sides = ", ".join(f"{side}.npz {n} clips" for side, n in self.sides.items())
            shape = " x ".join(str(s) for s in self.shape)
            out.append(f"  store: {self.store_dir} ({sides}; steps x dim = {shape}, {self.dtype})")
        else:
            out.append(
                f"  store: {self.store_dir} incomplete: {self.chunks_done} of "
                f"{self.chunks_total} chunks; run the other shards, then --merge"
            )
        for warning in self.warnings:
            out.append(f"  WARNING: {warning}")
        return out

    def to_json(self):
        return {
            "store_dir": str(self.store_dir),
            "clips_total": self.clips_total,
            "clips_done": self.clips_done,
            "clips_this_run": self.clips_this_run,
            "frames_this_run": self.frames_this_run,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.fps, 2),
            "clips_skipped": self.clips_skipped,
            "clips_failed": self.clips_failed,
            "clips_padded": self.clips_padded,
            "clips_damaged": self.clips_damaged,
            "complete": self.complete,
            "warnings": self.warnings,
        }


__all__ = ["Summary"]
