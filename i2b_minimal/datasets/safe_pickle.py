"""Reading a pickled ``.npy`` file without letting it run code.

THINGS-EEG2 publishes each subject's data as ``np.save`` of a dict (a 0-d object
array), so reading it needs pickle, and numpy's own loader with pickles allowed would
run whatever function a crafted file names (``os.system`` and the like). The
published files hold only dicts, lists, strings, numbers and numpy arrays, so
:class:`RestrictedUnpickler` admits exactly the globals those are rebuilt from and
refuses every other one before it is called, naming the file and the global.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

# What numpy arrays, dtypes and scalars are rebuilt from; numpy 2 moved numpy.core to numpy._core.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
# Containers and numbers; dict, list, tuple and str have their own opcodes, these are named by older protocols.
_BUILTIN_GLOBALS = {("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str", "int",
                                                      "float", "complex", "bool", "bytes")}
ALLOWED_GLOBALS = frozenset(_NUMPY_GLOBALS | _BUILTIN_GLOBALS)
# Where this numpy keeps ``_reconstruct`` and ``scalar``: the module its own array pickles name.
_MULTIARRAY = np.zeros(1).__reduce__()[0].__module__


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle that names a global outside :data:`ALLOWED_GLOBALS`: it could run code, so it is not loaded.

    A ``ValueError`` too: a bad data file, as the loaders report every other one.
    """


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only numpy arrays and builtin containers; ``source`` names the file in errors."""

    def __init__(self, file, source: str | os.PathLike):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source} asks to call {module}.{name} while loading; a THINGS-EEG2 file holds only numpy "
                "arrays, lists and strings, so it was refused and nothing in it ran. Download or write the file "
                "again from a source you trust")
        if module.endswith(".multiarray"):  # numpy 1.x and 2.x files alike, whichever numpy reads them
            module = _MULTIARRAY
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source} holds a persistent reference ({pid!r}); refused")


def load_npy(path: str | os.PathLike):
    """The array in a ``.npy`` file; an object array is unpickled with :class:`RestrictedUnpickler`."""
    path = Path(path)
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        if not dtype.hasobject:
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
        array = RestrictedUnpickler(handle, path).load()
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise pickle.UnpicklingError(f"{path}: the pickle does not hold the {shape} array its header announces")
    return array
