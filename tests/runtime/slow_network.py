"""An rpc connection whose run round trips take longer, as a distant board's would (for device-time tests)."""

from __future__ import annotations

import time

from vta.runtime.rpc.client import Connection

NETWORK_S = 0.2  # the delay added to every run round trip on the client side


class SlowNetwork(Connection):
    """Each run request waits NETWORK_S before it is sent; swap it in with ``conn.__class__ = SlowNetwork``."""

    def call(self, msg, timeout_s):
        if msg.KIND == "run":
            time.sleep(NETWORK_S)
        return super().call(msg, timeout_s)
