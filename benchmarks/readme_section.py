"""Each benchmark writes its table into its own section of ``benchmarks/README.md``."""

from __future__ import annotations

from pathlib import Path

from nengo_actions.io import write_text_atomic

README = Path(__file__).resolve().parent / "README.md"


def write_section(text, heading, readme=README):
    """Replace the section that starts with the line ``heading`` (up to the next
    ``## `` heading) with ``text``, or append it; atomically."""
    old = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    lines = old.splitlines()
    section = text.rstrip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        lines = lines + [""] + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + section + ([""] if end < len(lines) else []) + lines[end:]
    write_text_atomic(readme, "\n".join(lines).rstrip("\n") + "\n")
