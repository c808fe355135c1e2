"""sbir_utils: the thin utility package behind the SBIR study notebooks.

One concern per module: ``paths`` (where things live), ``config`` (profiles), ``data`` (indexes,
images, strokes, the embedded generator, real-dataset importers), ``models``, ``losses``,
``engine``, ``retrieval``, ``metrics``, ``reports`` and ``cli``.
"""

__version__ = "0.1.0"

import warnings as _warnings

# timm imports tqdm.auto, which warns inside Jupyter kernels without ipywidgets; the reports would show it.
_warnings.filterwarnings("ignore", message="IProgress not found")
