"""SigV4 for Bedrock calls: botocore's signature, byte for byte, without botocore's per-call setup.

botocore's `SigV4Auth.add_auth` builds an `AWSRequest`, walks its email-style header object once
per signed header, parses the URL three times and derives the signing key (four HMACs) on every
call: 120-160 µs for a short chat request, a third of the gateway's time per request. The gateway's
calls all have one shape (a POST with a JSON body to a URL of a few known models, signed over
`content-type`, `host`, `x-amz-date` and `x-amz-security-token`), so what does not change between
calls is computed once with botocore's own functions: the URL's canonical path, query and host per
URL, the signed-header list per credential, the derived signing key and the credential scope per
UTC date. Per call remain the body's sha256, the canonical request's sha256 and one HMAC, as AWS
requires. tests/runtime/test_bedrock_sigv4.py holds the result equal to `SigV4Auth.add_auth`'s
for many calls, session tokens and date rollovers.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth, _host_from_url
from botocore.credentials import Credentials
from botocore.utils import get_current_datetime

from .base import UpstreamCall

SIGNING_NAME = "bedrock"
"""The service name in Bedrock's SigV4 credential scope (the endpoint is bedrock-runtime)."""
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_URLS = 1024
"""Canonical URL parts kept; the gateway's URLs are one per model and operation, so this is never reached
unless something sends to arbitrary URLs, and then the cache starts over rather than grow."""


@dataclass(frozen=True, slots=True)
class _CanonicalUrl:
    """The canonical request's lines that depend only on the URL: path and query, and the `host`
    header line."""

    path_and_query: str
    host: str


@dataclass(frozen=True, slots=True)
class _DayKey:
    """The signing key and credential scope of one UTC date."""

    date: str
    key: bytes
    scope: str


class SigV4Signer:
    """SigV4 for one set of AWS keys in one region, as botocore's `SigV4Auth` signs a call whose
    only other signed header is `content-type`; the other headers (`accept`, the request id) are
    left out of the signature, which is what AWS requires and keeps the work per call fixed."""

    def __init__(self, keys: Mapping[str, str], region: str,
                 clock: Callable[[], datetime.datetime] = get_current_datetime) -> None:
        self._auth = SigV4Auth(Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"],
                                           keys.get("aws_session_token")), SIGNING_NAME, region)
        self._clock = clock
        credentials = self._auth.credentials
        self._access_key: str = credentials.access_key
        self._token: str | None = credentials.token or None
        names = ["content-type", "host", "x-amz-date"] + (["x-amz-security-token"] if self._token else [])
        self._signed_headers: str = self._auth.signed_headers(names)
        self._token_line = f"x-amz-security-token:{self._auth._header_value(self._token)}\n" if self._token else ""
        self._urls: dict[str, _CanonicalUrl] = {}
        self._day = _DayKey("", b"", "")

    def sign(self, call: UpstreamCall) -> UpstreamCall:
        """`call` with `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token`) for this moment."""
        timestamp = self._clock().strftime(SIGV4_TIMESTAMP)
        day = self._day if self._day.date == timestamp[:8] else self._new_day(timestamp[:8])
        url = self._urls.get(call.url) or self._canonical_url(call.url)
        content_type = self._auth._header_value(call.headers["content-type"])
        canonical_request = (
            f"{call.method.upper()}\n{url.path_and_query}content-type:{content_type}\n{url.host}x-amz-date:{timestamp}\n{self._token_line}\n"
            f"{self._signed_headers}\n{sha256(call.body).hexdigest()}"
        )
        string_to_sign = (f"{ALGORITHM}\n{timestamp}\n{day.scope}\n"
                          f"{sha256(canonical_request.encode('utf-8')).hexdigest()}")
        signature = self._auth._sign(day.key, string_to_sign, hex=True)
        headers = {**call.headers, "x-amz-date": timestamp}
        if self._token:
            headers["x-amz-security-token"] = self._token
        headers["authorization"] = (f"{ALGORITHM} Credential={self._access_key}/{day.scope}, "
                                    f"SignedHeaders={self._signed_headers}, Signature={signature}")
        return UpstreamCall(call.method, call.url, headers, call.body, call.stream)

    def _new_day(self, date: str) -> _DayKey:
        """botocore's key derivation (`SigV4Auth.signature`) up to the signing key, once per date."""
        sign = self._auth._sign
        key = sign(f"AWS4{self._auth.credentials.secret_key}".encode(), date)
        for part in (self._auth._region_name, self._auth._service_name, "aws4_request"):
            key = sign(key, part)
        self._day = _DayKey(date, key, f"{date}/{self._auth._region_name}/{self._auth._service_name}/aws4_request")
        return self._day

    def _canonical_url(self, url: str) -> _CanonicalUrl:
        parts = urlsplit(url)
        canonical = _CanonicalUrl(
            f"{self._auth._normalize_url_path(parts.path)}\n{self._auth._canonical_query_string_url(parts)}\n",
            f"host:{self._auth._header_value(_host_from_url(url))}\n",
        )
        if len(self._urls) >= MAX_URLS:
            self._urls.clear()
        self._urls[url] = canonical
        return canonical
