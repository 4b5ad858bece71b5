"""Schemathesis hooks for the fuzz pass (loaded through SCHEMATHESIS_HOOKS=fuzz_hooks).

Two things the schema cannot say, and only these, are taken out of the pass:

- an Idempotency-Key is unique per logical request: the generator draws few distinct keys
  ("0", "00"), so a key it reuses with another body is answered 422 idempotency-key-reused,
  as documented. A well-formed key is replaced with a fresh one; a malformed key is kept, so
  the server's 400 for it is still checked. LASTSEAT_FUZZ_REUSE_KEYS=1 keeps every key as
  drawn (the control test uses it to show the pass fails on a valid request refused 422).
- JSON Schema cannot require the members of array items to differ (a section named by two
  seat blocks, a pool name given twice): the 422 for that rule, by its detail, is not a
  failure. Every other refusal of a schema-valid request is.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import schemathesis

KEY_PATTERN = re.compile(r"^[!-~]([ -~]{0,253}[!-~])?$")
UNIQUE_MEMBER_RULES = (
    "seat positions must be unique within an event",
    "pool names must be unique within an event",
)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A fresh Idempotency-Key for each request that carries a well-formed one."""
    if os.environ.get("LASTSEAT_FUZZ_REUSE_KEYS") == "1" or not case.headers:
        return
    key = case.headers.get("Idempotency-Key")
    if isinstance(key, str) and KEY_PATTERN.fullmatch(key):
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the refusal of repeated names JSON Schema cannot express."""
    return not (
        response.status_code == 422 and any(rule in response.text for rule in UNIQUE_MEMBER_RULES)
    )
