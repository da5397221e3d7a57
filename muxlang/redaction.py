"""Secrets out of everything muxlang shows: one module, used everywhere.

Two kinds of protection:

- **redaction** of known secret values (expanded api keys, header values,
  values of secret-named variables a backend refers to) from error text:
  :func:`redact` replaces each with ``***``, and :func:`redact_cut` redacts
  *first*, then cuts the text to a length: cutting first could leave part of a
  key that no longer matches (a 401 body that echoes the key late, a CLI's
  long stderr). Every place that shortens error text for display or storage
  (console, ``--output json``, run records, gateway errors) calls
  :func:`redact_cut` with the run's secrets.
- **masking** of values written in config files, for the commands that show
  config as written (``backends``, ``roles``, ``doctor``): credentials inside a
  URL (``https://user:pass@host/v1?key=...``), secret-looking ``args`` and
  ``headers``/``env`` values. A value that only references variables
  (``${OPENAI_API_KEY}``) is shown as written; it holds no secret.

Standard library only: ``validate`` and the listing commands import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "REDACTED",
    "SECRET_NAME",
    "looks_secret",
    "mask_args",
    "mask_mapping",
    "mask_url",
    "redact",
    "redact_cut",
]

#: what a redacted secret value becomes in error text
REDACTED = "***"
#: what a masked config value is shown as
MASK = "****"

#: names (variables, query parameters, flags, header and env keys) whose values are secrets
SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS\b|AUTH|CREDENTIAL|SIGNATURE|\bSIG\b|SESSION|COOKIE",
    re.IGNORECASE,
)
#: a value that only references variables: ``${VAR}``, ``${VAR:-x}``, ``Bearer ${VAR}``
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\}")
#: well-known shapes of keys and tokens
_KEY_SHAPES = re.compile(
    r"^(?:sk-|sk_|pk_live_|rk_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|hf_|"
    r"ya29\.|eyJ)[A-Za-z0-9._\-]{8,}$"
)
_BEARER = re.compile(r"^(?:Bearer|Basic|Token)\s+\S+$", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first, so a
    secret that contains another is replaced whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_cut(text: str, secrets: Iterable[str], limit: int, *, keep: str = "head") -> str:
    """``text`` redacted, *then* cut to at most ``limit`` characters plus an ellipsis:
    ``keep="head"`` keeps the start, ``"tail"`` the end (for stderr)."""
    text = redact(text, secrets)
    if len(text) <= limit:
        return text
    if keep == "tail":
        return "…" + text[len(text) - limit :]
    return text[:limit] + "…"


def _only_references(value: str) -> bool:
    rest = _REFERENCE.sub("", value)
    return rest != value and not re.search(r"[A-Za-z0-9]{6,}", rest.replace("Bearer", ""))


def looks_secret(value: str) -> bool:
    """A literal value shaped like a key or token (``sk-...``, ``ghp_...``, a JWT,
    ``Bearer ...``, or a long unbroken run of letters and digits)."""
    value = value.strip()
    if not value or _only_references(value):
        return False
    if _KEY_SHAPES.match(value) or _BEARER.match(value):
        return True
    # a long token with letters and digits mixed and no spaces or path separators
    return (
        len(value) >= 24
        and re.fullmatch(r"[A-Za-z0-9_\-.+=]+", value) is not None
        and re.search(r"[0-9]", value) is not None
        and re.search(r"[A-Za-z]", value) is not None
    )


def mask_url(url: str) -> str:
    """``url`` with the password (or a lone user name: a token) and the values of
    secret-named query parameters masked; anything that is not a URL unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here, not later
    except ValueError:
        return MASK if "@" in url else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon:
            shown_password = password if _only_references(password) else MASK
            netloc = f"{user}:{shown_password}@{hostport}"
        else:
            netloc = f"{user if _only_references(user) else MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        shown = []
        for key, value in pairs:
            if (SECRET_NAME.search(key) or looks_secret(value)) and not _only_references(value):
                value = MASK
            shown.append(f"{quote(key, safe='')}={quote(value, safe='*${}:-')}")
        query = "&".join(shown)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_args(args: Sequence[str]) -> list[str]:
    """Command-line arguments with secrets masked: the value after a secret-named
    flag (``--api-key X``), the value in ``--token=X``, URLs with credentials,
    and anything that looks like a key."""
    out: list[str] = []
    after_flag = False
    for arg in args:
        if after_flag and not arg.startswith("-"):
            out.append(arg if _only_references(arg) else MASK)
            after_flag = False
            continue
        after_flag = False
        if arg.startswith("-"):
            flag, eq, value = arg.partition("=")
            if SECRET_NAME.search(flag):
                if eq:
                    out.append(arg if _only_references(value) else f"{flag}={MASK}")
                else:
                    out.append(arg)
                    after_flag = True
                continue
            if eq and looks_secret(value):
                out.append(f"{flag}={MASK}")
                continue
        if "://" in arg:
            out.append(mask_url(arg))
        elif looks_secret(arg):
            out.append(MASK)
        else:
            out.append(arg)
    return out


def mask_mapping(values: Mapping[str, str]) -> dict[str, str]:
    """``headers``/``env`` for display: a value under a secret-named key, or one
    that looks like a key, is masked; references to variables are kept."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if _only_references(value):
            out[key] = value
        elif SECRET_NAME.search(key) or looks_secret(value):
            out[key] = MASK
        elif "://" in value:
            out[key] = mask_url(value)
        else:
            out[key] = value
    return out
