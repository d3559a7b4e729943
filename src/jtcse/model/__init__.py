"""Model side: name resolution, pooling, the twin tower and its cross-attention, the saved-model format."""
