"""The pure core: signatures, explanations, payloads, normalising, the store.

Imports no tornado or ipywidgets (tests/test_public_api.py checks it)."""
