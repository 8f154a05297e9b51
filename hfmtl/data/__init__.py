"""Data: reading task files, tokenizing them, batching and sampling tasks."""
