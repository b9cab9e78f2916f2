"""Profiles: real PyTorch models and real devices into problem files.
"""
