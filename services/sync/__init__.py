"""The per-record sync: lock -> read both sides -> decide (pure) -> write -> snapshot."""
