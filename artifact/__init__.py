"""The routing table: the format between the compiler, which writes it, and the runtime, which serves it.

Its models (the schema), canonical JSON and revision, and the one way to encode a table to its
file's bytes and to read one back verified. It imports nothing else of Gatepost, so both sides can
depend on it without depending on each other.
"""

from .canonical import canonical_json, canonical_pieces, route_set_id, table_revision
from .codec import decode, encode, encoded_parts, from_data, read, release_table, routing_table, write_to
from .errors import ArtifactError, NotARoutingTable, NotJSON, RevisionMismatch, SchemaMismatch, UnreadableArtifact
from .models import (
    FORMAT_VERSION,
    BudgetSpec,
    CacheSpec,
    CircuitSpec,
    CredentialSpec,
    GatewaySpec,
    InstanceList,
    KeySpec,
    ModelSpec,
    PriceSpec,
    ProviderSpec,
    RateLimitSpec,
    RateSpec,
    RouteSpec,
    RoutingTable,
    SourceFileSpec,
    Table,
    TargetSpec,
    TelemetrySpec,
    TimeoutsSpec,
    instance_list,
    sharing_field_names,
)
from .source_map import GrantLine, KeyLines, RouteLines, SourceMap

__all__ = [
    "FORMAT_VERSION",
    "ArtifactError",
    "BudgetSpec",
    "CacheSpec",
    "CircuitSpec",
    "CredentialSpec",
    "GatewaySpec",
    "GrantLine",
    "InstanceList",
    "KeyLines",
    "KeySpec",
    "ModelSpec",
    "NotARoutingTable",
    "NotJSON",
    "PriceSpec",
    "ProviderSpec",
    "RateLimitSpec",
    "RateSpec",
    "RevisionMismatch",
    "RouteLines",
    "RouteSpec",
    "RoutingTable",
    "SchemaMismatch",
    "SourceFileSpec",
    "SourceMap",
    "Table",
    "TargetSpec",
    "TelemetrySpec",
    "TimeoutsSpec",
    "UnreadableArtifact",
    "canonical_json",
    "canonical_pieces",
    "decode",
    "encode",
    "encoded_parts",
    "from_data",
    "instance_list",
    "read",
    "release_table",
    "route_set_id",
    "routing_table",
    "sharing_field_names",
    "table_revision",
    "write_to",
]
