"""Serving a model script with nengo-gui: host, port, the URL with its access token."""

from __future__ import annotations

import logging
import os
import threading
import warnings
import webbrowser
from pathlib import Path

from nengo_actions.gui.build import GuiError
from nengo_actions.gui.netgraph_fix import fix_nengo_gui_expansion

#: Ports tried when none is given: nengo-gui's default and the next few.
DEFAULT_PORTS = range(8080, 8090)


def serve(script, port=None, browser=False, host="127.0.0.1"):
    """Serve ``script`` with nengo-gui on ``host:port`` until interrupted.

    Prints the URL with the access token. ``port=None`` takes the first free one of
    :data:`DEFAULT_PORTS`; ``port=0`` any free port.
    """
    # editor autocompletion is optional; its absence is not worth a warning
    warnings.filterwarnings("ignore", message="Install the jedi module")
    import nengo_gui
    import nengo_gui.gui
    from nengo_gui.guibackend import GuiServerSettings, ModelContext

    logging.basicConfig()
    fix_nengo_gui_expansion()
    script = Path(script)
    os.chdir(script.parent)  # nengo-gui resolves the script and its .cfg from here
    server = None
    for candidate in DEFAULT_PORTS if port is None else [port]:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Cannot bind to address")
                server = nengo_gui.gui.InteractiveGUI(
                    ModelContext(filename=script.name),
                    GuiServerSettings((host, candidate), auto_shutdown=0),
                    page_settings=nengo_gui.page.PageSettings(backend="nengo"),
                )
            break
        except (RuntimeError, OSError):  # nengo-gui: "Could not bind to any address."
            continue
    if server is None:
        tried = f"ports {DEFAULT_PORTS.start}-{DEFAULT_PORTS.stop - 1}" if port is None else f"port {port}"
        raise GuiError(f"{host}: {tried} in use; choose another with --port (0: any free port)")
    url = str(server.server.get_url())
    print(f"Nengo GUI for {script}: {url}", flush=True)
    if browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    server.start()
