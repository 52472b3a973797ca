"""Input rules, each failing with a BAD_USER_INPUT that says what to fix."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from schema.errors import BadUserInput

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
MAX_BODY = 4000
MAX_PAGE = 100
MAX_IDS = 100


def username(value: str) -> str:
    if not USERNAME_PATTERN.fullmatch(value):
        raise BadUserInput(
            "Usernames are 3 to 32 characters: letters, digits, '_', '.' and '-'.",
            field="username",
        )
    return value


def password(value: str, *, for_username: str) -> str:
    if not 8 <= len(value) <= 128:
        raise BadUserInput("Passwords are 8 to 128 characters long.", field="password")
    if value.casefold() == for_username.casefold():
        raise BadUserInput("The password must not be the username.", field="password")
    return value


def single_line(value: str, *, field: str, max_length: int, min_length: int = 1) -> str:
    """Trimmed text without line breaks or control characters."""
    text = value.strip()
    if not min_length <= len(text) <= max_length:
        raise BadUserInput(
            f"{field} must be {min_length} to {max_length} characters after trimming.",
            field=field,
        )
    if any(_is_control(ch) for ch in text):
        raise BadUserInput(f"{field} must not contain control characters.", field=field)
    return text


def multi_line(value: str, *, field: str, max_length: int, min_length: int = 1) -> str:
    """Text as sent (trimming only decides emptiness); newlines and tabs allowed."""
    trimmed_length = len(value.strip())
    if trimmed_length < min_length or len(value) > max_length:
        raise BadUserInput(
            f"{field} must be {min_length} to {max_length} characters (and not only white space).",
            field=field,
        )
    if any(_is_control(ch) and ch not in "\n\t" for ch in value):
        raise BadUserInput(
            f"{field} must not contain control characters other than newline and tab.",
            field=field,
        )
    return value


def message_body(value: str) -> str:
    # Stored and returned exactly as sent; the 4000 limit applies to the
    # trimmed text, so surrounding white space never makes a message too long.
    if not value.strip():
        raise BadUserInput("The message body must not be empty.", field="body")
    if len(value.strip()) > MAX_BODY:
        raise BadUserInput(f"Messages are at most {MAX_BODY} characters.", field="body")
    if len(value) > MAX_BODY * 2:  # a bound on the white space around the text, too
        raise BadUserInput(f"Messages are at most {MAX_BODY} characters.", field="body")
    if any(_is_control(ch) and ch not in "\n\t" for ch in value):
        raise BadUserInput(
            "Messages must not contain control characters other than newline and tab.",
            field="body",
        )
    return value


def url(value: str, *, field: str) -> str:
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        # A bracketed host that is no IP address ("http://[zz]/") or an
        # unclosed bracket ("http://[::1/a.png"): not a URL at all.
        parts = None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.netloc
        or len(text) > 2048
        or any(ch.isspace() or _is_control(ch) for ch in text)
    ):
        raise BadUserInput(
            f"{field} must be an http(s) URL of at most 2048 characters.", field=field
        )
    return text


def emoji(value: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= 32 or any(ch.isspace() or _is_control(ch) for ch in text):
        raise BadUserInput(
            "A reaction is one emoji or short code (1 to 32 characters, no spaces).",
            field="emoji",
        )
    return text


def client_message_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 128 or any(_is_control(ch) for ch in value):
        raise BadUserInput(
            "clientMessageId must be 1 to 128 printable characters.", field="clientMessageId"
        )
    return value


def search_text(value: str | None, *, field: str, max_length: int = 200) -> str | None:
    """Trimmed search text (None when blank); no control characters."""
    text = (value or "").strip()
    if len(text) > max_length or any(_is_control(ch) for ch in text):
        raise BadUserInput(
            f"{field} must be at most {max_length} characters, without control characters.",
            field=field,
        )
    return text or None


def plausible_username(value: str) -> bool:
    """Whether looking the name up can find anyone (saves the database odd input)."""
    return 0 < len(value) <= 64 and not any(_is_control(ch) for ch in value)


def id_list(values: list[str], *, field: str) -> list[str]:
    if len(values) > MAX_IDS:
        raise BadUserInput(f"{field} takes at most {MAX_IDS} ids at once.", field=field)
    return list(dict.fromkeys(values))


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in ("\u2028", "\u2029")
