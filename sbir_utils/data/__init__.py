"""Data: index files (``index``), image decoding (``images``), stroke-3 sketches (``strokes``),
the embedded procedural data set (``procedural``), real-dataset importers (``formats``), image
transforms (``transforms``), the decode-once image store (``image_store``) and torch datasets and
batch samplers (``loading``). Nothing here imports from the rest of ``sbir_utils`` but ``paths``,
``config`` and ``fileio``."""
