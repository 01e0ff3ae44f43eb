"""Operator tooling: the ops CLI (`python -m services.ops`) and the functions behind the ops API steps."""
