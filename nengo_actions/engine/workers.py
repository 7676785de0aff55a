"""``python -m nengo_actions.train ... --workers N``: N training workers on this machine.

Each worker is the same train command with ``train.distribute = "multi_worker"`` and a
``TF_CONFIG`` naming N local ports, as TensorFlow's multi-worker guide sets it up; on a
cluster the same variables come from SLURM, Kubernetes or Ray instead, and this launcher
is not needed. It is for trying the setup and for the tests: N processes on one machine
share its cores (each gets an equal share of TensorFlow's threads).

Worker 0 is the chief: its output is this command's output and it writes the run
folder. The others log into temporary files, shown when they fail. When one worker
ends badly the others are stopped (a collective operation would wait for it forever),
and the message says how to go on with ``--resume``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nengo_actions.errors import ConfigError, UserError

#: The train command prints the run folder it writes on a line starting with this.
RUN_FOLDER_PREFIX = "run folder: "


class WorkerError(UserError, RuntimeError):
    """A training worker ended badly; the message names it and how to go on."""


def free_ports(n):
    """``n`` TCP ports free on localhost now (a worker binds its port moments later)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_environments(n, ports=None, environ=None, cpus=None):
    """The environment of each of ``n`` local workers: ``TF_CONFIG`` and a thread share."""
    ports = ports or free_ports(n)
    environ = dict(os.environ if environ is None else environ)
    threads = str(max(1, (cpus or os.cpu_count() or 1) // n))
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    envs = []
    for index in range(n):
        env = dict(environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        env.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        env.setdefault("TF_NUM_INTEROP_THREADS", "1")
        envs.append(env)
    return envs


def without_option(argv, option):
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def _describe_exit(code):
    return f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit status {code}"


def _tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def launch(train_args, n, *, resume=None, log=print):
    """Run ``python -m nengo_actions.train TRAIN_ARGS`` as ``n`` local workers; returns the
    chief's exit status, or raises :class:`WorkerError` when a worker fails.

    ``train_args`` are the command's arguments without ``--workers``; ``resume`` is the
    run folder given with ``--resume`` (named in the message on failure).
    """
    if n < 1:
        raise ConfigError(f"--workers {n}: give 1 or more workers")
    command = [sys.executable, "-m", "nengo_actions.train", *train_args, "--set", 'train.distribute="multi_worker"']
    logs = Path(tempfile.mkdtemp(prefix="nengo_actions-workers-"))
    run_folder = [resume]
    procs, files = [], []
    log(f"starting {n} training workers on this machine (worker logs: {logs})")
    try:
        for index, env in enumerate(worker_environments(n)):
            if index == 0:
                proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            else:
                f = open(logs / f"worker{index}.log", "w", encoding="utf-8")
                files.append(f)
                proc = subprocess.Popen(command, env=env, stdout=f, stderr=subprocess.STDOUT)
            procs.append(proc)
        echo = threading.Thread(target=_echo_chief, args=(procs[0], run_folder), daemon=True)
        echo.start()
        failed = _wait(procs)
        echo.join(timeout=5)
        if failed is None:
            shutil.rmtree(logs, ignore_errors=True)
            return procs[0].returncode
        index, code = failed
        if index == 0 and code > 0:  # the chief's own error message has been shown
            return code
        where = f" (last lines of its log:\n{_tail(logs / f'worker{index}.log')})" if index else ""
        folder = run_folder[0]
        how = (f"go on with python -m nengo_actions.train --resume {folder} --workers {n}" if folder
               else "no run folder was made yet; start it again")
        raise WorkerError(f"training worker {index} of {n} ended with {_describe_exit(code)}; the other workers were "
                          f"stopped; {how}{where}")
    finally:
        _stop(procs)
        for f in files:
            f.close()


def _echo_chief(proc, run_folder):
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith(RUN_FOLDER_PREFIX):
            run_folder[0] = line[len(RUN_FOLDER_PREFIX):].strip()


def _wait(procs):
    """Wait until all workers end well, or one ends badly: ``None`` or ``(index, code)``."""
    while True:
        codes = [p.poll() for p in procs]
        bad = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if bad:
            return bad[0]
        if all(c == 0 for c in codes):
            return None
        time.sleep(0.2)


def _stop(procs, grace=10.0):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


__all__ = ["launch", "worker_environments", "free_ports", "without_option", "WorkerError"]
