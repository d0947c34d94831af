"""The pynq-vta notebooks, installed as ``vta.notebooks`` so that ``pynq get-notebooks pynq-vta`` finds them.

PYNQ resolves the ``pynq.notebooks`` entry point to this package's folder and copies everything in
it except this file and ``__pycache__``.
"""
