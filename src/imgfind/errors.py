"""Typed errors users can hit.

Every error carries a stable ``code`` (used by the REST API's JSON errors and
the CLI) and an HTTP ``status``; the message says what to do about it.

>>> try:
...     raise NotFound("no item 'abc' in collection 'default'")
... except ImgfindError as e:
...     (e.code, e.status)
('not_found', 404)
"""

from __future__ import annotations


class ImgfindError(Exception):
    """Base class of every error imgfind raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class NotFound(ImgfindError):
    code = "not_found"
    status = 404


class AlreadyExists(ImgfindError):
    code = "already_exists"
    status = 409


class InvalidInput(ImgfindError):
    """A caller passed something imgfind cannot use (bad argument, bad query)."""

    code = "invalid_input"
    status = 400


class InvalidArgument(InvalidInput, TypeError):
    """A library call with an argument it does not take, or of a type it cannot use
    (still a ``TypeError``, so code that catches Python's own keeps working)."""

    code = "invalid_argument"


class InvalidFilter(InvalidInput):
    code = "invalid_filter"


class UnsupportedFilter(InvalidFilter):
    """A valid filter that the collection's store cannot express (names operator and store).

    ``operator`` and ``backend`` say which, where the raiser knows them.
    """

    code = "unsupported_filter"

    def __init__(self, message: str, operator: str = "", backend: str = ""):
        super().__init__(message)
        self.operator = operator
        self.backend = backend


class InvalidImage(InvalidInput):
    """Bytes that are not a decodable image (truncated, empty, not an image)."""

    code = "invalid_image"
    status = 422


class UnknownField(InvalidInput):
    """A request field, query parameter or argument imgfind does not know (a typo is
    never silently ignored)."""

    code = "unknown_field"
    status = 422


class ImageTooLarge(InvalidImage):
    """Over the byte or pixel limit (decompression-bomb guard)."""

    code = "image_too_large"
    status = 413


class SourceError(InvalidInput):
    """A source could not be read: missing file, failed or refused URL fetch."""

    code = "source_error"
    status = 422


class PathNotAllowed(InvalidInput):
    code = "path_not_allowed"
    status = 403


class ModelMismatch(InvalidInput):
    """A vector or model that does not belong to this collection's model."""

    code = "model_mismatch"
    status = 409


class ModelUnavailable(ImgfindError):
    """Model weights could not be found or downloaded."""

    code = "model_unavailable"
    status = 503


class NotAllowed(ImgfindError):
    """Something this server's operator has not enabled (e.g. model downloads)."""

    code = "not_allowed"
    status = 403


class Busy(ImgfindError):
    """The server is at a limit right now; retry after ``retry_after`` seconds."""

    code = "busy"
    status = 503

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(ImgfindError):
    """The store on disk is damaged or cannot be opened."""

    code = "store_error"
    status = 500


class NotSupported(ImgfindError):
    """A feature this store, backend or install does not offer (e.g. a missing extra)."""

    code = "not_supported"
    status = 501


class StoreTooNew(StoreError):
    """A store written by a newer imgfind: refused untouched; upgrade imgfind to open it."""

    code = "store_too_new"
    status = 409


class Unauthorized(ImgfindError):
    code = "unauthorized"
    status = 401


def from_code(code: str | None, message: str) -> ImgfindError:
    """The typed error for a stable ``code`` (used to re-raise errors from batch results
    and from the REST API on the client side).

    >>> type(from_code("not_found", "gone")).__name__
    'NotFound'
    """
    stack: list[type[ImgfindError]] = [ImgfindError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls(message)
        stack.extend(cls.__subclasses__())
    return ImgfindError(message)
