"""Operator tooling: the local stack, the `lgsp` command, the demo."""
