"""The window's building blocks: grid, preview with attention overlay, editor, n-best list, log."""
