class TranslationError(Exception):
    """A request that cannot be expressed in the target's protocol; the message says what and why."""
