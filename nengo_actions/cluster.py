"""Ray, as the sweeps, searches and extraction use it: one way to start or join it.

NumPy-free and TensorFlow-free, so that ``feature_extraction`` can use it too.
"""

from __future__ import annotations

import contextlib
import os

from nengo_actions.config import PROJECT_ROOT
from nengo_actions.errors import ConfigError

#: What a command without Ray says (the extra that installs it).
RAY_MISSING = 'needs Ray: pip install -e ".[cluster]"'


def checkout_pythonpath(existing=None):
    """``PYTHONPATH`` with this checkout first, then ``existing``: a worker process or a
    Ray worker on another node imports this code, not whatever its Python finds."""
    return os.pathsep.join(p for p in (str(PROJECT_ROOT), existing) if p)


def import_ray(missing=RAY_MISSING):
    """The ``ray`` module, or a :class:`ConfigError` saying ``missing``."""
    try:
        import ray
    except ImportError:
        raise ConfigError(missing) from None
    return ray


@contextlib.contextmanager
def ray_session(address=None, num_cpus=None, missing=RAY_MISSING):
    """Connect to the Ray cluster at ``address`` or start a local Ray with ``num_cpus``
    CPUs (``None``: all), unless Ray is running already; one started here is shut down
    afterwards. Its workers import this checkout. Without Ray: :class:`ConfigError`."""
    ray = import_ray(missing)
    started = False
    if not ray.is_initialized():
        options = dict(runtime_env={"env_vars": {"PYTHONPATH": checkout_pythonpath(os.environ.get("PYTHONPATH"))}},
                       log_to_driver=False, configure_logging=False)
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


__all__ = ["ray_session", "import_ray", "checkout_pythonpath", "RAY_MISSING"]
