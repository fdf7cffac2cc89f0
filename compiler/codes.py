"""The catalogue of diagnostic codes.

A code is stable once released: tests, CI annotations and users' search history depend on it.
Ranges: GP0xx reading files, GP1xx document structure, GP2xx references between entities,
GP3xx routing semantics, GP4xx budgets, prices and rate limits, GP5xx secrets and keys.
GP314 (a route mixing protocols that cannot be translated) is retired, not to be reused: the
translation hub serves every pair of protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):  # noqa: UP042 - str() of a StrEnum member differs, and renderers print it
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str


def _code(code: str, title: str, severity: Severity = Severity.ERROR) -> Code:
    return Code(code, severity, title)


IO_ERROR = _code("GP001", "file cannot be read")
YAML_SYNTAX = _code("GP002", "YAML syntax error")
DUPLICATE_KEY = _code("GP003", "key repeated in one mapping")
NOT_A_MAPPING = _code("GP004", "document or section is not a mapping")
MULTIPLE_DOCUMENTS = _code("GP005", "more than one YAML document in a file")
NO_POLICY_FILES = _code("GP006", "no policy files found")
UNSUPPORTED_YAML = _code("GP007", "unsupported YAML feature")

UNKNOWN_SECTION = _code("GP101", "unknown section")
UNKNOWN_FIELD = _code("GP102", "unknown field")
MISSING_FIELD = _code("GP103", "required field missing")
INVALID_VALUE = _code("GP104", "invalid value")
DUPLICATE_ENTITY = _code("GP105", "entity defined more than once")
INVALID_ID = _code("GP106", "invalid entity id")

UNKNOWN_PROVIDER = _code("GP201", "unknown provider")
UNKNOWN_MODEL = _code("GP202", "unknown model")
UNKNOWN_PROFILE = _code("GP203", "unknown profile")
UNKNOWN_TEAM = _code("GP204", "unknown team")
UNKNOWN_PRINCIPAL = _code("GP205", "principal not defined")
PROFILE_CYCLE = _code("GP206", "profile extends cycle")
ALIAS_CYCLE = _code("GP207", "model alias cycle")
UNKNOWN_ALIAS_TARGET = _code("GP208", "alias target is neither a model nor an alias")
UNKNOWN_PROVIDER_TYPE = _code("GP209", "unknown provider type")
GLOB_MATCHES_NOTHING = _code("GP210", "models_allowed pattern matches no model")

MODELS_ALLOWED_MISSING = _code("GP301", "models_allowed not set")
ALIAS_WIDENS_ACCESS = _code("GP302", "alias target not allowed for this key")
PROVIDER_DOES_NOT_SERVE = _code("GP303", "provider does not serve model")
FALLBACK_HOP_UNUSABLE = _code("GP304", "fallback hop applies to no route")
NON_RETRYABLE_CONDITION = _code("GP305", "fallback condition retrying cannot fix")
AZURE_API_VERSION_MISSING = _code("GP306", "azure_openai provider without api_version")
AZURE_DEPLOYMENT_MISSING = _code("GP307", "azure_openai provider has no deployment for a model")
MODEL_WITHOUT_PROVIDER = _code("GP308", "model served by no provider")
DEADLINE_EXCEEDED = _code("GP309", "fallback can outlast the client deadline", Severity.WARNING)
BASE_URL_MISSING = _code("GP310", "provider needs a base_url")
CROSS_PROTOCOL_CACHE = _code("GP312", "cache directives do not cross protocols", Severity.WARNING)
EXPIRED_KEY = _code("GP313", "virtual key has expired", Severity.WARNING)
FALLBACK_BEYOND_ACCESS = _code("GP315", "fallback hop serves a model the key may not call", Severity.WARNING)
CLOUD_SETTING_MISSING = _code("GP320", "bedrock provider without region, or vertex provider without project or location")
BEDROCK_MODEL_NOT_ANTHROPIC = _code("GP321", "bedrock model id is not an Anthropic model")
TELEMETRY_ENDPOINT_INVALID = _code("GP330", "telemetry endpoint is not an http(s) URL or an env:/file: reference")

BUDGET_UNREACHABLE = _code("GP401", "budget applies to no virtual key")
BUDGET_TARGET_UNKNOWN = _code("GP402", "budget target does not exist")
UNPRICED_MODEL = _code("GP403", "model under a budget has no price")
WARN_ABOVE_BLOCK = _code("GP404", "warn threshold above block threshold")
NON_POSITIVE_LIMIT = _code("GP405", "budget limit is not positive")
UNKNOWN_TIMEZONE = _code("GP406", "unknown timezone")
PRICE_TOO_PRECISE = _code("GP407", "price finer than 1e-6 USD per 1M tokens")
RATE_LIMIT_TARGET_UNKNOWN = _code("GP408", "rate limit target does not exist")
RATE_LIMIT_UNREACHABLE = _code("GP409", "rate limit applies to no virtual key", Severity.WARNING)

PLAINTEXT_SECRET = _code("GP501", "literal secret in policy")
MALFORMED_SHA256 = _code("GP502", "key_sha256 is not 64 hex characters")
DUPLICATE_KEY_HASH = _code("GP503", "same key_sha256 on two virtual keys")
MALFORMED_KEY_PREFIX = _code("GP504", "key_prefix is not 12 characters")
INVALID_SECRET_REF = _code("GP505", "credential is not an env: or file: reference")
MISSING_CREDENTIAL = _code("GP506", "provider has no api_key")
CREDENTIAL_TWICE = _code("GP507", "provider sets both api_key and api_keys")
NO_CREDENTIALS = _code("GP508", "api_keys is empty")
DUPLICATE_CREDENTIAL_ID = _code("GP509", "two credentials of a provider share an id")

ALL: tuple[Code, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Code))
BY_CODE: dict[str, Code] = {c.code: c for c in ALL}
