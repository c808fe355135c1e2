"""Load pickles of numpy arrays without letting the file run code.

``pickle.load`` calls whatever callable a file names, so a downloaded pickle (QMUL's
``ShoeV2_Coordinate`` / ``ChairV2_Coordinate``, a dict of ``(N, 3)`` float arrays) could run
``os.system``. :func:`load` admits only the globals needed to rebuild numpy arrays and plain
containers, and refuses anything else with an error naming the file and the global.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

# (module, name) pairs a pickle of numpy arrays may reference. numpy < 2 writes ``numpy.core...``,
# numpy >= 2 writes ``numpy._core...``; both spellings are admitted and resolved to the installed one.
_NUMPY_RECONSTRUCTORS = {
    ("multiarray", "_reconstruct"),  # ndarray.__reduce__ (protocols 0-4)
    ("multiarray", "scalar"),  # numpy scalars such as np.float64(1.0)
    ("numeric", "_frombuffer"),  # ndarray.__reduce_ex__ with protocol 5
}
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {(f"numpy.{core}.{sub}", name) for core in ("core", "_core") for sub, name in _NUMPY_RECONSTRUCTORS}
    | {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Protocol-2 pickles written by Python 3 store bytes (the array buffer) as _codecs.encode(str, "latin1").
        ("_codecs", "encode"),
        # Containers that protocols 0-2 build through a global instead of an opcode (Python 2's
        # ``__builtin__`` names are mapped to ``builtins`` first, as pickle itself does).
        ("builtins", "bytes"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("collections", "OrderedDict"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside :data:`ALLOWED_GLOBALS`, or could not be read."""


def _resolve(module: str, name: str) -> Any:
    if module.startswith(("numpy.core.", "numpy._core.")):
        sub = module.split(".", 2)[2]
        for prefix in ("numpy._core.", "numpy.core."):  # the installed numpy's own spelling first
            try:
                return getattr(importlib.import_module(prefix + sub), name)
            except (ImportError, AttributeError):
                continue
        raise AttributeError(f"numpy has no {module}.{name}")
    return getattr(importlib.import_module(module), name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str):
        # latin1 lets Python 2 pickles (the original QMUL files) decode their array buffers.
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # The Python 2 -> 3 renames that pickle's own find_class applies (``__builtin__`` -> ``builtins``).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refused to load global '{module}.{name}': only numpy array "
                "reconstruction is allowed (a pickle naming other callables can run code when loaded)"
            )
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refused persistent id {pid!r} (not a plain numpy pickle)")


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the restricted unpickler; ``source`` names it in errors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            UnicodeDecodeError) as exc:
        raise UnsafePickleError(f"{source}: not a readable pickle of numpy arrays ({type(exc).__name__}: {exc})") from None


def load(path: str | Path) -> Any:
    """Load a pickle file of numpy arrays (dicts/lists/tuples of ``ndarray``) safely.

    Raises :class:`UnsafePickleError` naming the file and the refused global, or the reason the file
    cannot be read as a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pickle file not found")
    return loads(path.read_bytes(), source=str(path))
