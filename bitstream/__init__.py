"""vta.bitstream"""
