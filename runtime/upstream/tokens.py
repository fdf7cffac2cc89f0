"""OAuth access tokens for a Google service account, from google-auth's service-account flow.

google-auth signs the JWT assertion with the key file's private key and trades it at the key
file's `token_uri` for an access token. The token is cached; google-auth counts it expired 3 min
45 s before its expiry, so a request never carries a token about to lapse. A refresh runs in a
worker thread (google-auth's transports block), one at a time: requests arriving meanwhile wait
for it instead of each asking for a token. While the token is valid the cost of a request is
one clock read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import urllib3
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.auth.transport.urllib3 import Request
from google.oauth2 import service_account

from ..exceptions import UpstreamConnectError, UpstreamError
from ..table import Timeouts

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class TokenRefused(Exception):
    """The token endpoint refused the service account (a revoked key, a deleted account)."""


class TokenRefreshFailed(UpstreamError):
    """The token endpoint failed (5xx) after google-auth's own retries."""

    reason = "token_refresh"

    @property
    def condition(self) -> str | None:
        return "5xx"


class _TimedRequest(Request):
    """google-auth's urllib3 transport with the provider's timeouts (its default waits forever)."""

    def __init__(self, timeouts: Timeouts) -> None:
        super().__init__(urllib3.PoolManager(retries=False))  # type: ignore[no-untyped-call]
        self._timeout = urllib3.Timeout(connect=timeouts.connect_s, read=timeouts.read_s)

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return super().__call__(url, method, body, headers, timeout or self._timeout, **kwargs)  # type: ignore[no-untyped-call]


class AccessTokens:
    def __init__(self, info: Mapping[str, Any], timeouts: Timeouts) -> None:
        self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            dict(info), scopes=list(SCOPES)
        )
        self._request = _TimedRequest(timeouts)
        self._refreshing = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token, refreshed first when it is missing or close to its expiry."""
        credentials = self._credentials
        if not credentials.valid:
            async with self._refreshing:
                if not credentials.valid:
                    await self._refresh()
        return str(credentials.token)

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self._credentials.refresh, self._request)
        except TransportError as exc:
            raise UpstreamConnectError("cannot reach the service account's token endpoint") from exc
        except RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TokenRefreshFailed("the token endpoint failed") from exc
            raise TokenRefused("the token endpoint refused the service account") from exc
        except (GoogleAuthError, ValueError) as exc:
            raise TokenRefused(f"the service account could not be used ({type(exc).__name__})") from exc
