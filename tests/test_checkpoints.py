"""Checkpoint loading helpers that need no checkpoint on disk."""

import sys

import numpy

from fairseq_gmlm.fairseq_fixes.checkpoint_loading import checkpoint_globals, numpy_reconstruct


def numpy_array_reconstructor():
    """The function numpy's pickles call to rebuild an array, whatever module it lives in."""
    return numpy.zeros(1).__reduce__()[0]


def test_numpy_reconstruct_is_the_function_numpy_pickles_arrays_with():
    assert numpy_reconstruct() is numpy_array_reconstructor()
    assert numpy_array_reconstructor() in checkpoint_globals()


def test_numpy_reconstruct_falls_back_to_numpy_core_when_numpy_has_no_underscore_core(monkeypatch):
    """NumPy 1.26 (allowed by pyproject) has ``numpy.core.multiarray`` but no ``numpy._core`` attribute."""
    expected = numpy_array_reconstructor()
    monkeypatch.delattr(numpy, "_core")
    monkeypatch.setitem(sys.modules, "numpy._core.multiarray", None)  # importing it fails
    assert numpy_reconstruct() is expected
    assert expected in checkpoint_globals()
