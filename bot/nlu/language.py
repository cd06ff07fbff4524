"""Moved to `bot.language`; kept so imports written against the old path work."""
from bot.language import detect_language  # noqa: F401
