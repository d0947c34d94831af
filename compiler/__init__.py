"""vta.compiler"""
