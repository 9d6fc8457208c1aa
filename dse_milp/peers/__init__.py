"""Adapters that run other mapping tools (peers) on our layers and bring their mappings back into our model."""
