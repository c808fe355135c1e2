"""Data: index files (``index``), image decoding (``images``), stroke-3 sketches (``strokes``),
the embedded procedural data set (``procedural``), real-dataset importers (``formats``) and torch
datasets (``loading``)."""
