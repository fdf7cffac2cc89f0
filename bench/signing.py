"""What authenticating one request costs on the cloud providers.

    .venv/bin/python bench/signing.py

Bedrock: SigV4 signing of one InvokeModel call, the gateway's signer (bedrock_sigv4.py: botocore's
functions, the signing key derived once a day) beside botocore's `SigV4Auth.add_auth` on an
`AWSRequest` (what the gateway called before), for a short chat request and for a Claude Code
request (~115 KB, the captured fixture; the body hash grows with it). Vertex: the path of a request while its access
token is cached (google-auth's validity check and the header added), and for scale the Bedrock
adapter's own body building. Reports the median and p99 of single calls, timed in batches.
"""

from __future__ import annotations

import asyncio
import datetime
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from runtime.table import Provider, Target, Timeouts
from runtime.upstream.base import Outbound, UpstreamCall
from runtime.upstream.bedrock import prepare
from runtime.upstream.bedrock_sigv4 import SigV4Signer
from runtime.upstream.tokens import AccessTokens

ROOT = Path(__file__).resolve().parent.parent
BATCH = 200
ROUNDS = 100
KEYS = {"aws_access_key_id": "GATEPOSTBENCHKEYID01", "aws_secret_access_key": "bench-secret-access-key-0123456789abcdef"}
PROVIDER = Provider("bedrock-us", "bedrock", "anthropic", None, None, None, {}, Timeouts(5, 60, 180), 5, 30.0,
                    region="us-east-1")
TARGET = Target("bedrock-us", "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic")


def timed(name: str, call: Callable[[], object]) -> None:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            call()
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    print(f"{name:60} {statistics.median(samples):>10.1f} {samples[int(len(samples) * 0.99)]:>8.1f}")


def botocore_signed(auth: SigV4Auth, call: UpstreamCall) -> dict[str, str]:
    request = AWSRequest(method=call.method, url=call.url, data=call.body,
                         headers={"content-type": call.headers["content-type"]})
    auth.add_auth(request)
    return {**call.headers, **{k.lower(): v for k, v in request.headers.items()}}


def outbound(payload: dict[str, object]) -> Outbound:
    return Outbound("messages", payload, True, {"anthropic-version": "2023-06-01"})


def main() -> None:
    short = outbound({"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
                      "messages": [{"role": "user", "content": "Write a haiku about gateways."}]})
    claude_code = outbound(orjson.loads((ROOT / "tests" / "fixtures" / "claude-messages-request.json").read_bytes()))
    signer = SigV4Signer(KEYS, "us-east-1")
    short_call, long_call = prepare(PROVIDER, None, TARGET, short), prepare(PROVIDER, None, TARGET, claude_code)
    print(f"{'case':60} {'median µs':>10} {'p99 µs':>8}")
    auth = SigV4Auth(Credentials(KEYS["aws_access_key_id"], KEYS["aws_secret_access_key"]), "bedrock", "us-east-1")
    short_name, long_name = f"short request ({len(short_call.body)} B)", f"Claude Code request ({len(long_call.body) // 1024} KB)"
    timed(f"bedrock: SigV4 sign, {short_name}", lambda: signer.sign(short_call))
    timed(f"bedrock: botocore SigV4Auth.add_auth, {short_name}", lambda: botocore_signed(auth, short_call))
    timed(f"bedrock: SigV4 sign, {long_name}", lambda: signer.sign(long_call))
    timed(f"bedrock: botocore SigV4Auth.add_auth, {long_name}", lambda: botocore_signed(auth, long_call))
    timed("bedrock: build the InvokeModel body, Claude Code request", lambda: prepare(PROVIDER, None, TARGET, claude_code))

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    account = {"type": "service_account", "client_email": "bench@example.iam.gserviceaccount.com",
               "private_key": pem.decode(), "private_key_id": "bench", "token_uri": "http://127.0.0.1:9/token"}
    tokens = AccessTokens(account, Timeouts(5, 60, 180))
    credentials = tokens._credentials
    credentials.token = "ya29.bench-cached-token"
    credentials.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=1)
    loop = asyncio.new_event_loop()

    async def authorised() -> None:
        for _ in range(BATCH):
            token = await tokens.token()
            replace(short_call, headers={**short_call.headers, "authorization": f"Bearer {token}"})

    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        loop.run_until_complete(authorised())
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    print(f"{'vertex: cached token + Authorization header':60} {statistics.median(samples):>10.1f} "
          f"{samples[int(len(samples) * 0.99)]:>8.1f}")
    loop.close()


if __name__ == "__main__":
    main()
