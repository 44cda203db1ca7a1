"""Signed events: an HMAC over each stored event, made with a key only servers and administrators hold.

Whoever can write the database can append or rewrite events, and recompute every digest the read models keep; what
they cannot make without the key is a signature. With `ACTORBATCH_SIGNING_KEY` set, every event this process writes
carries one, in front of its msgpack state: a marker byte msgpack never uses (0xc1), then the 32-byte
HMAC-SHA256 of the event's aggregate id, version, topic and state. Readers strip it with or without the key;
`audit verify` with the key checks it.
"""

import hashlib
import hmac
import os

from actorbatch.errors import ActorbatchError

KEY_ENV = "ACTORBATCH_SIGNING_KEY"
MIN_KEY_CHARS = 16
MARK = b"\xc1"  # "never used" in msgpack: no unsigned state starts with it
MAC_BYTES = 32


def signing_key() -> bytes | None:
    """The key from the environment, if one is set; a key too short to resist guessing is refused."""
    text = os.environ.get(KEY_ENV)
    if not text:
        return None
    if len(text) < MIN_KEY_CHARS:
        raise ActorbatchError(f"{KEY_ENV}: expected at least {MIN_KEY_CHARS} characters, got {len(text)}")
    return text.encode()


def mac(key: bytes, originator_id: object, version: int, topic: str, payload: bytes) -> bytes:
    """The signature of one event: it binds the state to its aggregate, version and topic (not to its position,
    which the database assigns after the signature is made)."""
    signer = hmac.new(key, f"{originator_id}|{version}|{topic}|".encode(), hashlib.sha256)
    signer.update(payload)
    return signer.digest()


def sign(key: bytes, originator_id: object, version: int, topic: str, payload: bytes) -> bytes:
    """The stored state of a signed event."""
    return MARK + mac(key, originator_id, version, topic, payload) + payload


def split(state: bytes) -> tuple[bytes | None, bytes]:
    """(signature or None, the msgpack state) of a stored state."""
    if state[:1] == MARK and len(state) > MAC_BYTES:
        return state[1:1 + MAC_BYTES], state[1 + MAC_BYTES:]
    return None, state


def signed_correctly(key: bytes, originator_id: object, version: int, topic: str, state: bytes) -> bool | None:
    """None if the state carries no signature, else whether the signature is the key's for this event."""
    signature, payload = split(state)
    if signature is None:
        return None
    return hmac.compare_digest(signature, mac(key, originator_id, version, topic, payload))
