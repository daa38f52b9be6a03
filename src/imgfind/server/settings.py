"""What a running server allows, and the limits every route shares."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

#: Room for multipart framing and JSON fields around one image.
ENVELOPE_BYTES = 1 << 20
#: Largest ``limit`` of one page of items.
MAX_PAGE = 1000
#: Largest ``k`` of one search (the library's bound).
MAX_K = 10_000
#: Largest ``offset`` into a listing: any int64 store takes it, and JSON numbers stay exact.
MAX_OFFSET = 2**53 - 1
#: Items sampled by ``/fields`` to list filterable keys.
FIELDS_SAMPLE = 500


@dataclass(frozen=True)
class Settings:
    """What a running server allows; built by :func:`create_app` from its options."""

    api_key: str | None
    protect_reads: bool
    allow_paths: tuple[str, ...]
    max_upload_bytes: int
    max_request_bytes: int
    max_batch: int
    fetch_timeout: float
    allow_model_download: bool = False

    def body_limit(self, scope: Scope) -> int:
        """Batch routes take up to ``max_request_bytes``; others one image (base64-sized)."""
        if scope.get("path", "").endswith("/batch"):
            return self.max_request_bytes
        return self.max_upload_bytes * 4 // 3 + ENVELOPE_BYTES
