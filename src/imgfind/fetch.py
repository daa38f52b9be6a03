"""Bounded, SSRF-checked downloads of http(s) URLs.

Every URL imgfind reads on a user's behalf comes through :func:`fetch_url`:
size- and time-limited, http(s) only (also across redirects), and with
``allow_private=False`` connected to the very address that passed the
public-address check (no second DNS lookup for a rebinding host to win).

>>> is_url("HTTPS://example.com/a.jpg"), is_url("/photos/a.jpg")
(True, False)
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from imgfind.errors import ImageTooLarge, SourceError

__all__ = ["fetch_url", "is_url", "too_large"]


def is_url(text: str) -> bool:
    """http(s) URLs, any case of the scheme."""
    return text[:8].lower().startswith(("http://", "https://"))


def too_large(what: str, size: int, max_bytes: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{what} is {size:,} bytes, over the limit of {max_bytes:,} bytes; "
        "shrink it or raise the byte limit"
    )



_USER_AGENT = "imgfind/0.1 (+https://github.com/imgfind)"


def fetch_url(
    url: str,
    *,
    max_bytes: int = 32 * 2**20,
    timeout: float = 20.0,
    max_redirects: int = 5,
    allow_private: bool = True,
    sink: Callable[[bytes], object] | None = None,
) -> bytes:
    """Download a URL with hard bounds on size, total time and redirects.

    With ``allow_private=False`` (what the server uses for its callers) a URL
    whose host resolves to a loopback, private, link-local or otherwise
    non-public address is refused, also as a redirect target, so callers
    cannot make the server reach its own network.

    Only http and https are allowed, also as redirect targets. The size limit
    is enforced on the bytes actually received (a missing or lying
    Content-Length does not help a huge response through); ``timeout`` bounds
    the whole download, so a server trickling bytes cannot hold it forever.
    With ``sink``, each chunk goes to ``sink(chunk)`` instead of memory and
    ``b""`` is returned (large downloads to a file).

    Raises :class:`~imgfind.errors.SourceError` (refused scheme, HTTP error
    status, network failure, too slow, too many redirects) or
    :class:`~imgfind.errors.ImageTooLarge`.

    >>> fetch_url("file:///etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imgfind.errors.SourceError: refusing to fetch file:///etc/passwd: only http and https ...
    """

    _check_scheme(url)
    outcome: dict[str, Any] = {}
    cancelled = threading.Event()
    deadline = time.monotonic() + timeout

    def work() -> None:
        try:
            outcome["data"] = _fetch(url, max_bytes, timeout, deadline, max_redirects, cancelled,
                                     allow_private, sink)
        except Exception as e:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = e

    # The download runs in a helper thread so the caller gets control back at
    # the deadline even while the socket is blocked in a read; httpx's own
    # timeouts are per operation and cannot bound the total.
    worker = threading.Thread(target=work, name="imgfind-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        cancelled.set()
        raise SourceError(
            f"fetching {url} took longer than {timeout:g} s; try again or raise the timeout"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _check_scheme(url: str) -> None:
    if not is_url(url):
        raise SourceError(f"refusing to fetch {url}: only http and https URLs are allowed")


def _fetch(
    url: str,
    max_bytes: int,
    timeout: float,
    deadline: float,
    max_redirects: int,
    cancelled: threading.Event,
    allow_private: bool = True,
    sink: Callable[[bytes], object] | None = None,
) -> bytes:
    import httpx  # here, not at import: a text search never fetches (cold CLI start)

    headers = {"User-Agent": _USER_AGENT, "Accept": "image/*,*/*;q=0.5"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers) as client:
            for _ in range(max_redirects + 1):
                target, pin = url, dict[str, Any]()
                if not allow_private:
                    # Connect to the very address that was checked: a second DNS lookup
                    # could answer a private one (DNS rebinding).
                    target, pin = _pinned(url, _check_public(url))
                with client.stream("GET", target, **pin) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        url = str(httpx.URL(url).join(location))
                        _check_scheme(url)
                        continue
                    if response.status_code >= 400:
                        raise SourceError(
                            f"{url} answered HTTP {response.status_code} "
                            f"{response.reason_phrase}".rstrip()
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise too_large(url, int(declared), max_bytes)
                    chunks: list[bytes] = []
                    received = 0
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > max_bytes:
                            raise too_large(f"{url} (still downloading)", received, max_bytes)
                        if cancelled.is_set() or time.monotonic() > deadline:
                            raise SourceError(f"fetching {url} took too long")
                        if sink is not None:
                            sink(chunk)
                        else:
                            chunks.append(chunk)
                    return b"".join(chunks)
    except httpx.TimeoutException as e:
        raise SourceError(f"fetching {url} timed out ({type(e).__name__})") from e
    except httpx.InvalidURL as e:
        raise SourceError(f"{url} is not a valid URL: {e}") from e
    except httpx.HTTPError as e:
        raise SourceError(f"cannot fetch {url}: {e}") from e
    raise SourceError(f"{url} redirected more than {max_redirects} times")


def _pinned(url: str, address: str) -> tuple[str, dict[str, Any]]:
    """``url`` with its host replaced by ``address``, and the request options that keep
    the original host for the ``Host`` header, TLS SNI and certificate check."""
    import httpx

    u = httpx.URL(url)
    host = u.host
    netloc = f"[{host}]" if ":" in host else host
    if u.port is not None:
        netloc += f":{u.port}"
    return str(u.copy_with(host=address)), {
        "headers": {"Host": netloc}, "extensions": {"sni_hostname": host}}


def _check_public(url: str) -> str:
    """Refuse a URL whose host is, or resolves to, a non-public address; -> the address
    to connect to (one of those checked)."""

    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as e:
        raise SourceError(f"cannot resolve the host of {url}: {e}") from None
    if not infos:
        raise SourceError(f"cannot resolve the host of {url}")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise SourceError(
                f"refusing to fetch {url}: {host} is a private or local address ({address}); "
                "only public URLs are fetched for API callers (imgfind serve "
                "--allow-private-urls lifts this)")
    return str(ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0]))
