"""vta.driver"""
