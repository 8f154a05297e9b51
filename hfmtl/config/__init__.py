"""The run config: YAML read into frozen dataclasses, checked key by key, and explained (`hfmtl config`).

Nothing here imports torch or transformers, so reading or checking a config is fast.
"""
