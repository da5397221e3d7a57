"""Shared pytest configuration. Each area keeps its own fixtures beside its tests."""
