"""Shared fixtures: the demo booru, generated raw folders, tiny packed datasets."""
