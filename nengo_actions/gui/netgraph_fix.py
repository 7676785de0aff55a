"""A fix for nengo-gui 0.6: open the subnetworks a ``.cfg`` marks as expanded."""

from __future__ import annotations

import nengo


def fix_nengo_gui_expansion():
    """Make nengo-gui 0.6 open the subnetworks its ``.cfg`` marks as expanded.

    Its ``NetGraph.create_object`` means to send a network's saved ``expanded`` flag to
    the page but tests the builtin ``type`` instead of ``obj_type``, so every subnetwork
    starts collapsed. The flag is sent here with the object's other display details.
    """
    from nengo_gui.components import netgraph

    if getattr(netgraph.NetGraph, "_sends_expanded", False):
        return
    original = netgraph.NetGraph.get_extra_info

    def get_extra_info(self, obj):
        info = original(self, obj)
        if isinstance(obj, nengo.Network):
            info["expanded"] = bool(self.page.config[obj].expanded)
        return info

    netgraph.NetGraph.get_extra_info = get_extra_info
    netgraph.NetGraph._sends_expanded = True
