"""The finpatrol sub-commands, one module per area."""
