"""vta.runtime"""
