"""Input rules, each failing with a BAD_USER_INPUT that says what to fix."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import idna
import regex

from schema.errors import BadUserInput

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
MAX_BODY = 4000
MAX_REACTION = 32
MAX_PAGE = 100
MAX_IDS = 100

# What shows nothing by itself: white space; the default-ignorable code points
# (zero-width space and joiners, word joiner, BOM, bidi controls, variation
# selectors, Hangul fillers, combining grapheme joiner, tags, ...); every other
# format (Cf) or control (Cc) character; and the blank braille pattern, which
# fonts draw empty.
_INVISIBLE = r"\p{White_Space}\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\u2800"
_BLANK = regex.compile(f"[{_INVISIBLE}]*")
_GRAPHEME = regex.compile(r"\X")
# Embeddings, overrides, isolates, and the marks LRM, RLM and ALM.
_BIDI_CONTROL = regex.compile(r"\p{Bidi_Control}")
_PRESENTATION_SELECTOR = regex.compile("[\ufe0e\ufe0f]")
# Where a fully-qualified emoji (UTS #51) has U+FE0F: after an emoji that is text
# by default, unless a skin-tone modifier follows; and in a keycap.
_WANTS_EMOJI_SELECTOR = regex.compile(
    r"[\p{Extended_Pictographic}&&\p{Emoji}&&\P{Emoji_Presentation}](?!\p{Emoji_Modifier})"
    r"|[#*0-9](?=\u20E3)",
    regex.V1,
)


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


def text_length(value: str) -> int:
    """Length in UTF-16 code units: what String.length says in JavaScript (and Java,
    Kotlin, C#, Dart), so a client's counter and the server's limits agree."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def single_line(value: str, *, field: str, max_length: int, min_length: int = 1) -> str:
    """A name or title: one line of visible text that cannot reorder what is around it.

    White space and invisible characters at either end are trimmed. Bidi controls
    are refused anywhere, and so are invisible characters inside, unless they belong
    to a visible character (ZWJ in an emoji sequence, ZWNJ in a Persian word, a
    variation selector): names are shown inside other text (SYSTEM messages), where
    they must neither reorder it nor hide nor pass for blank.
    """
    bidi = _BIDI_CONTROL.search(value)
    if bidi is not None:
        raise BadUserInput(
            f"{field} must not contain bidirectional control characters ({_code(bidi[0])}).",
            field=field,
        )
    wrong_length = BadUserInput(
        f"{field} must be {min_length} to {max_length} characters (UTF-16 code units)"
        " after trimming.",
        field=field,
    )
    stripped = value.strip()
    if text_length(stripped) > 2 * max_length:  # a bound on invisible padding, too
        raise wrong_length
    if any(_is_control(ch) for ch in stripped):  # refused, even where trimming would drop it
        raise BadUserInput(f"{field} must not contain control characters.", field=field)
    clusters = _trim(_GRAPHEME.findall(stripped))
    text = "".join(clusters)
    if min_length > 0 and not text:
        raise BadUserInput(f"{field} must have a visible character.", field=field)
    if not min_length <= text_length(text) <= max_length:
        raise wrong_length
    hidden = next((ch for c in clusters if (ch := _unexplained_invisible(c)) is not None), None)
    if hidden is not None:
        raise BadUserInput(
            f"{field} must not contain invisible characters ({_code(hidden)}).", field=field
        )
    return text


_INVISIBLE_CHAR = regex.compile(f"[{_INVISIBLE}]")
_EMOJI = regex.compile(r"\p{Emoji}")
_PICTOGRAPHIC = regex.compile(r"\p{Extended_Pictographic}")
# Scripts in which ZWNJ stops letters joining (Persian, Urdu, Indic, ...).
_JOINING_SCRIPT = regex.compile(
    r"[\p{Arabic}\p{Syriac}\p{Nko}\p{Mongolian}\p{Thaana}\p{Devanagari}\p{Bengali}"
    r"\p{Gurmukhi}\p{Gujarati}\p{Oriya}\p{Tamil}\p{Telugu}\p{Kannada}\p{Malayalam}"
    r"\p{Sinhala}\p{Khmer}\p{Myanmar}]"
)
_MONGOLIAN = regex.compile(r"\p{Mongolian}")
_HAN = regex.compile(r"\p{Han}")
_MARK = regex.compile(r"\p{M}")
_VIRAMA = 9  # the canonical combining class of a virama
_BLACK_FLAG = "\U0001f3f4"  # tag sequences (the flags of England, Scotland, Wales) start so


def _unexplained_invisible(cluster: str) -> str | None:
    """The first invisible character of a name's grapheme cluster that its neighbours
    do not explain; None when each has its reason there.

    Each has its contexts: a variation selector after an emoji (or an ideographic
    one after a Han character, as Japanese names use), ZWJ between two parts of an
    emoji sequence or after a virama (Indic conjuncts: ශ්‍රී), tags after the black
    flag, ZWNJ in a joining script, CGJ between two combining marks (Hebrew),
    Mongolian selectors after Mongolian letters. Anywhere else an invisible
    character only hides something (a name that looks like another).
    """
    if cluster.isspace():
        return None
    if _INVISIBLE_CHAR.match(cluster[0]):
        return cluster[0]
    base = cluster[0]
    for i in range(1, len(cluster)):
        ch = cluster[i]
        if not _INVISIBLE_CHAR.match(ch):
            continue
        before, after = cluster[i - 1], cluster[i + 1 : i + 2]
        explained = (
            (ch in "\ufe0e\ufe0f" and _EMOJI.match(base) is not None)
            or ("\U000e0100" <= ch <= "\U000e01ef" and _HAN.match(base) is not None)
            or (
                ch == "\u200d"
                and (
                    unicodedata.combining(before) == _VIRAMA
                    or (
                        _PICTOGRAPHIC.search(cluster[:i]) is not None
                        and _PICTOGRAPHIC.match(after) is not None
                    )
                )
            )
            or ("\U000e0020" <= ch <= "\U000e007f" and base == _BLACK_FLAG)
            or (ch == "\u200c" and _JOINING_SCRIPT.match(base) is not None)
            or (ch == "\u034f" and _MARK.match(before) is not None and _MARK.match(after))
            or ("\u180b" <= ch <= "\u180f" and _MONGOLIAN.match(base) is not None)
        )
        if not explained:
            return ch
    return None


def multi_line(value: str, *, field: str, max_length: int, min_length: int = 1) -> str:
    """Free text (a description) without the white space around it; "" when nothing
    in it is visible. Newlines, tabs and bidi controls are allowed, as in messages."""
    text = value.strip() if _has_visible(value) else ""
    if text_length(text) < min_length or text_length(value) > max_length:
        raise BadUserInput(
            f"{field} must be {min_length} to {max_length} characters (UTF-16 code units)"
            " and not only white space or invisible characters.",
            field=field,
        )
    if any(_is_control(ch) and ch not in "\n\t" for ch in value):
        raise BadUserInput(
            f"{field} must not contain control characters other than newline and tab.",
            field=field,
        )
    return text


def message_body(value: str) -> str:
    # Stored and returned exactly as sent, but it must show something: white space
    # and invisible characters alone are empty. The limit counts UTF-16 code units
    # of the text between them, so padding never makes a message too long.
    too_long = (
        f"Messages are at most {MAX_BODY} characters, counted in UTF-16 code units"
        " (as String.length in JavaScript)."
    )
    if text_length(value) > MAX_BODY * 2:  # a bound on the padding around the text, too
        raise BadUserInput(too_long, field="body")
    visible = _trimmed(value)
    if not visible:
        raise BadUserInput(
            "The message body must not be empty (white space and invisible characters"
            " alone are empty).",
            field="body",
        )
    if text_length(visible) > MAX_BODY:
        raise BadUserInput(too_long, field="body")
    if any(_is_control(ch) and ch not in "\n\t" for ch in value):
        raise BadUserInput(
            "Messages must not contain control characters other than newline and tab.",
            field="body",
        )
    return value


def url(value: str, *, field: str) -> str:
    """An http(s) URL that browsers parse as such (WHATWG URL): a host, an ASCII
    port up to 65535, brackets only around an IPv6 address, no credentials."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        authority = _AUTHORITY.fullmatch(parts.netloc)
        valid = (
            parts.scheme in ("https", "http")
            and authority is not None
            and (authority["port"] is None or int(authority["port"]) <= 65535)
            and (
                _is_ipv6(authority["ipv6"])
                if authority["ipv6"] is not None
                else _is_host(authority["host"])
            )
            and len(text) <= 2048
            and not any(ch.isspace() or _is_control(ch) for ch in text)
        )
    except ValueError:
        # A bracketed host that is no IP address ("http://[zz]/") or an
        # unclosed bracket ("http://[::1/a.png"): not a URL at all.
        valid = False
    if not valid:
        raise BadUserInput(
            f"{field} must be an http(s) URL of at most 2048 characters.", field=field
        )
    return text


# host (a name, or an IPv6 address in brackets) and an optional port of ASCII digits
_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s/?#@\[\]:<>^|%\\\"\x7f]+))"
    r"(?::(?P<port>[0-9]{1,20}))?"
)
# A host whose last label is a number is an IPv4 address, or nothing (WHATWG URL).
_NUMERIC_LABEL = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


def _is_host(host: str) -> bool:
    """A domain browsers accept: IDNA (UTS #46) valid, or a dotted-quad IPv4 address."""
    name = host[:-1] if host.endswith(".") else host
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return False
        return True
    labels = name.split(".")
    if name.isascii() and not any(label.lower().startswith("xn--") for label in labels):
        return all(labels)  # ASCII names browsers take as they are (underscores too)
    try:
        idna.encode(name, uts46=True)  # what browsers check of international names
    except (idna.IDNAError, UnicodeError):
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def emoji(value: str) -> str:
    """A reaction key, in its one spelling (see reaction_key), trimmed; bidi controls
    and invisible characters inside are refused, as in names."""
    stripped = value.strip()
    clusters = (
        _trim(_GRAPHEME.findall(reaction_key(stripped)))
        if text_length(stripped) <= 4 * MAX_REACTION
        and _BIDI_CONTROL.search(stripped) is None
        and not any(_is_control(ch) for ch in stripped)
        else []
    )
    text = "".join(clusters)
    if (
        not 1 <= text_length(text) <= MAX_REACTION
        or any(ch.isspace() for ch in text)
        or any(_is_blank(c) for c in clusters)
    ):
        raise BadUserInput(
            f"A reaction is one emoji or short code (1 to {MAX_REACTION} characters,"
            " no spaces or invisible characters).",
            field="emoji",
        )
    return text


def reaction_key(value: str) -> str:
    """One spelling for what looks the same, so that it counts the same: NFC, and
    emoji fully qualified (UTS #51) as emoji keyboards send them, with U+FE0F after
    an emoji that is text by default and none after one that is emoji already.
    U+FE0E (text presentation) is dropped: a reaction is shown as an emoji."""
    text = _PRESENTATION_SELECTOR.sub("", unicodedata.normalize("NFC", value))
    return _WANTS_EMOJI_SELECTOR.sub(lambda m: m[0] + "\ufe0f", text)


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


def _has_visible(text: str) -> bool:
    return _BLANK.fullmatch(text) is None


def _is_blank(cluster: str) -> bool:
    return _BLANK.fullmatch(cluster) is not None


def _trim(clusters: list[str]) -> list[str]:
    """The grapheme clusters without those of white space and invisible characters at
    either end (a cluster, so an emoji keeps its variation selector)."""
    start, end = 0, len(clusters)
    while start < end and _is_blank(clusters[start]):
        start += 1
    while end > start and _is_blank(clusters[end - 1]):
        end -= 1
    return clusters[start:end]


def _trimmed(text: str) -> str:
    """The text without clusters of white space and invisible characters at either end."""
    if text and not _is_blank(text[0]) and not _is_blank(text[-1]):
        return text  # the common case, without splitting the text into clusters
    return "".join(_trim(_GRAPHEME.findall(text)))


def _code(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in ("\u2028", "\u2029")
