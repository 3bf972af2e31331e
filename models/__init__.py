"""Models: an encoder-decoder over edge-list graphs with query heads for distances."""
