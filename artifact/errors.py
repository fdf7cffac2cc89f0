"""Why an artifact is refused.

    ArtifactError               an artifact that must not be served or compared; catch this one
     ├── UnreadableArtifact     the file cannot be read
     ├── NotJSON                its bytes are not JSON
     ├── NotARoutingTable       JSON, but not a routing table of this format version
     ├── SchemaMismatch         a routing table that does not match the schema
     └── RevisionMismatch       a table that is not what its revision says (edited by hand, truncated)

Each message starts with the artifact's name (its path, or `<artifact>`) and says what was
expected and what was found.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """An artifact that must not be served: unreadable, malformed, or not what its revision says."""


class UnreadableArtifact(ArtifactError):
    pass


class NotJSON(ArtifactError):
    pass


class NotARoutingTable(ArtifactError):
    pass


class SchemaMismatch(ArtifactError):
    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location
        """The dotted path of the first field that does not match (`table.virtual_keys.vk-a.status`)."""


class RevisionMismatch(ArtifactError):
    def __init__(self, message: str, claimed: str, actual: str) -> None:
        super().__init__(message)
        self.claimed = claimed
        self.actual = actual
