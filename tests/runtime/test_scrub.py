"""Provider credentials taken out of bytes bound for a client."""

from __future__ import annotations

from runtime.scrub import REDACTED, CredentialScrubber

SECRET = "upstream/credential+for-scrub-tests"


def test_every_spelling_of_a_credential_is_replaced() -> None:
    scrub = CredentialScrubber([SECRET, "another-upstream-credential"])
    body = f'{{"message": "got {SECRET} and {SECRET.replace("/", chr(92) + "/")}"}}'.encode()
    assert scrub(body) == b'{"message": "got ' + REDACTED + b" and " + REDACTED + b'"}'


def test_bytes_without_a_credential_are_returned_as_they_are() -> None:
    scrub = CredentialScrubber([SECRET])
    body = b'data: {"text": "upstream/cred is only its start"}\n\n'
    assert scrub(body) == body


def test_values_too_short_to_be_keys_are_left_alone() -> None:
    assert CredentialScrubber(["abc"])(b"abcabc") == b"abcabc"
