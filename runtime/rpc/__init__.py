"""Remote devices without remote code: ``vta rpc serve`` on the board, the ``rpc`` backend on the host.

The wire carries data only (msgpack frames of checked, typed fields); see docs/remote.md for the
threat model. Needs the ``rpc`` extra (msgpack): ``pip install ".[rpc]"`` from the pynq-vta checkout.
"""

from __future__ import annotations

__all__: list[str] = []
