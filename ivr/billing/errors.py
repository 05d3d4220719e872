"""The error of a billing file that cannot be read at all (shared by the reader's modules)."""

from __future__ import annotations

__all__ = ["CsvFileError"]


class CsvFileError(Exception):
    """The file cannot be read as CSV at all (missing, binary, empty, mixed encodings, no usable
    header). The message is the reason shown to the admin, in the CLI, the upload page and the API."""
