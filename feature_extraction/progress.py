"""Progress with an ETA: a tqdm bar on a terminal, plain lines when the output is a pipe.

When the train command runs the extraction as a subprocess it reads the output line by
line; a tqdm bar there would arrive as one endless line of carriage returns.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``update(n, **postfix)`` after each unit of work; ``close()`` at the end."""

    def __init__(self, total, desc, unit="clip", enabled=True, interval=5.0, stream=None):
        self.total, self.desc, self.unit = total, desc, unit
        self.enabled, self.interval = enabled and total > 0, interval
        self.stream = stream or sys.stderr
        self.done, self.start, self.last = 0, time.perf_counter(), 0.0
        self.bar = None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream)

    def update(self, n=1, **postfix):
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)
            return
        now = time.perf_counter() - self.start
        if now - self.last >= self.interval or self.done >= self.total:
            self.last = now
            rate = self.done / now if now > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            extra = "".join(f", {k} {v}" for k, v in postfix.items())
            print(
                f"{self.desc}: {self.done}/{self.total} {self.unit}s, {now:.0f} s elapsed, "
                f"ETA {eta:.0f} s{extra}",
                file=self.stream, flush=True,
            )

    def close(self):
        if self.bar is not None:
            self.bar.close()
