"""The partner registry: organisations, their attributes, lifecycle and history."""
