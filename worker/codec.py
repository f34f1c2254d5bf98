"""Client-side encryption of payloads with AES-256-GCM.

Servers, databases and Kafka topics then hold only ciphertext; keys live with
workers and clients. Each payload names its key id, so keys rotate without
rewriting history: encode uses the active key, decode the key a payload names.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from collections.abc import Mapping, Sequence

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.converter import ENCODING, PayloadCodec, make_payload, payload_bytes
from worker.errors import InvalidArgumentError, PayloadDecryptionError, UnknownEncryptionKeyError
from worker.wire import Payload

BINARY_ENCRYPTED = "binary/encrypted"
CIPHER = "encryption-cipher"
KEY_ID = "encryption-key-id"
AES256_GCM = "AES256-GCM"
KEY_ENV_VAR = "BATON_ENCRYPTION_KEYS"

_KEY_BYTES = 32
_NONCE_BYTES = 12  # 96 bits: the size GCM is specified for; others are hashed down
_LEN = struct.Struct(">I")
# Key ids travel in metadata and in the key spec, whose separators they must avoid.
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def generate_key() -> bytes:
    """Return a new random 256-bit key for :class:`AesGcmCodec`."""
    return os.urandom(_KEY_BYTES)


def format_key_spec(keys: Mapping[str, bytes], *, active_key_id: str) -> str:
    """Render keys as :meth:`AesGcmCodec.from_env` reads them, the active key first.

    Args:
        keys: Key id to 32-byte key.
        active_key_id: The key new payloads are encrypted with.
    """
    AesGcmCodec(keys=keys, active_key_id=active_key_id)  # same checks as the codec
    order = [active_key_id, *(kid for kid in keys if kid != active_key_id)]
    return ",".join(f"{kid}:{base64.b64encode(keys[kid]).decode('ascii')}" for kid in order)


class AesGcmCodec(PayloadCodec):
    """Encrypts whole payloads (metadata and data) with AES-256-GCM.

    An encoded payload has metadata ``{"encoding": "binary/encrypted",
    "encryption-cipher": "AES256-GCM", "encryption-key-id": KID}`` and data
    ``base64(nonce || ciphertext || tag)`` with a fresh 96-bit random nonce.
    The key id is authenticated as associated data, so relabelling a payload
    with another key id makes it fail to decrypt. Payloads that are not
    ``binary/encrypted`` decode unchanged, so histories written before
    encryption was turned on still read.

    Args:
        keys: Key id to 32-byte key. Keep retired keys here for as long as
            histories encrypted with them must be read.
        active_key_id: The key id new payloads are encrypted with.

    Raises:
        InvalidArgumentError: A key is not 32 bytes, a key id is malformed or
            ``active_key_id`` is not among ``keys``.
    """

    def __init__(self, *, keys: Mapping[str, bytes], active_key_id: str) -> None:
        aeads: dict[str, AESGCM] = {}
        for kid, key in keys.items():
            if not isinstance(kid, str) or not _KEY_ID.match(kid):
                raise InvalidArgumentError(f"key id {kid!r} is not 1-128 chars of A-Za-z0-9._-")
            if not isinstance(key, bytes | bytearray) or len(key) != _KEY_BYTES:
                size = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else "not bytes"
                raise InvalidArgumentError(
                    f"encryption key {kid!r} must be {_KEY_BYTES} bytes for AES-256, got {size}",
                    details={"key_id": kid},
                )
            # Only the AESGCM objects are kept: they never show the key in repr.
            aeads[kid] = AESGCM(bytes(key))
        if active_key_id not in aeads:
            raise InvalidArgumentError(
                f"active key id {active_key_id!r} is not among the keys {sorted(aeads)}",
                details={"key_id": active_key_id},
            )
        self._aeads = aeads
        self._active_key_id = active_key_id

    @property
    def active_key_id(self) -> str:
        """The key id new payloads are encrypted with."""
        return self._active_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this codec can decrypt."""
        return frozenset(self._aeads)

    def __repr__(self) -> str:
        return f"AesGcmCodec(key_ids={sorted(self._aeads)}, active_key_id={self._active_key_id!r})"

    @classmethod
    def from_env(
        cls, var: str = KEY_ENV_VAR, *, environ: Mapping[str, str] | None = None
    ) -> AesGcmCodec:
        """Build a codec from the key spec in an environment variable.

        The spec is a comma-separated list of ``KID:BASE64KEY`` entries, each
        key 32 bytes in standard base64 (see ``generate_key`` and
        ``format_key_spec``). The active key is the one marked with a leading
        ``*``, else the first. To rotate, put the new key first (or mark it) and
        keep old keys listed while their payloads must still be read::

            BATON_ENCRYPTION_KEYS="k2:q5Tm...=,k1:9fXb...="
            BATON_ENCRYPTION_KEYS="k1:9fXb...=,*k2:q5Tm...="

        Args:
            var: Name of the environment variable.
            environ: Mapping to read instead of ``os.environ``.

        Raises:
            InvalidArgumentError: The variable is unset or empty, or the spec is
                malformed; the message never contains key material.
        """
        env = os.environ if environ is None else environ
        spec = env.get(var, "")
        if not spec.strip():
            raise InvalidArgumentError(
                f"environment variable {var} is not set: set it to KID:BASE64KEY[,...] "
                "(worker.codec.generate_key() makes a key)"
            )
        return cls.from_key_spec(spec, source=var)

    @classmethod
    def from_key_spec(cls, spec: str, *, source: str = "key spec") -> AesGcmCodec:
        """Build a codec from a ``KID:BASE64KEY,...`` string as :meth:`from_env` describes.

        ``source`` names where the spec came from in error messages.
        """
        keys: dict[str, bytes] = {}
        marked: list[str] = []
        for n, raw in enumerate(spec.split(","), start=1):
            entry = raw.strip()
            if not entry:
                continue  # tolerate a trailing comma
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if kid.startswith("*"):
                kid = kid[1:].strip()
                marked.append(kid)
            if not sep or not _KEY_ID.match(kid):
                # A misplaced key could sit where the id belongs: name the position only.
                raise InvalidArgumentError(
                    f"entry {n} of {source} is not of the form [*]KID:BASE64KEY "
                    "with KID of A-Z a-z 0-9 . _ -"
                )
            if kid in keys:
                raise InvalidArgumentError(f"key id {kid!r} appears twice in {source}")
            try:
                keys[kid] = base64.b64decode(encoded.strip(), validate=True)
            except ValueError:  # binascii.Error included
                # ``from None``: the decoder's error could quote the material.
                raise InvalidArgumentError(
                    f"key {kid!r} in {source} is not valid standard base64"
                ) from None
        if not keys:
            raise InvalidArgumentError(f"{source} holds no keys")
        if len(marked) > 1:
            raise InvalidArgumentError(f"{source} marks several active keys with '*': {marked}")
        active = marked[0] if marked else next(iter(keys))
        return cls(keys=keys, active_key_id=active)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the active key."""
        kid = self._active_key_id
        meta = {ENCODING: BINARY_ENCRYPTED, CIPHER: AES256_GCM, KEY_ID: kid}
        out: list[Payload] = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = self._aeads[kid].encrypt(nonce, _serialise(payload), kid.encode())
            out.append(make_payload(dict(meta), nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; pass any others through unchanged.

        Raises:
            UnknownEncryptionKeyError: A payload names a key id this codec
                does not hold.
            PayloadDecryptionError: A payload is malformed or fails
                authentication (altered, relabelled or wrong key).
        """
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING) != BINARY_ENCRYPTED:
            return payload
        cipher, kid = payload.metadata.get(CIPHER), payload.metadata.get(KEY_ID)
        if cipher != AES256_GCM or not kid:
            raise PayloadDecryptionError(
                f"encrypted payload has cipher {cipher!r} and key id {kid!r}; "
                f"this codec needs cipher {AES256_GCM!r} and a key id"
            )
        aead = self._aeads.get(kid)
        if aead is None:
            raise UnknownEncryptionKeyError(
                f"payload was encrypted with key id {kid!r}, which this codec does not hold: "
                f"add that key to the codec's keys (held: {sorted(self._aeads)})",
                details={"key_id": kid},
            )
        try:
            blob = payload_bytes(payload)  # bad base64 and short nonces raise ValueError
            plain = aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode())
        except (InvalidTag, ValueError):
            raise PayloadDecryptionError(
                f"encrypted payload failed authentication with key id {kid!r}: it was "
                "altered, truncated, relabelled or encrypted with a different key"
            ) from None
        return _deserialise(plain, kid)


# Inner form: u32 length of the metadata JSON, the metadata JSON, then the raw
# data bytes. Raw rather than base64 keeps ciphertext ~25% smaller.
def _serialise(payload: Payload) -> bytes:
    meta = orjson.dumps(payload.metadata, option=orjson.OPT_SORT_KEYS)
    return _LEN.pack(len(meta)) + meta + payload_bytes(payload)


def _deserialise(plain: bytes, kid: str) -> Payload:
    # Authentication passed, so a bad shape means an incompatible writer, not tampering.
    try:
        (size,) = _LEN.unpack_from(plain)
        end = _LEN.size + size
        if len(plain) < end:
            raise ValueError("inner payload truncated")
        # Payload validation (a pydantic ValueError) checks the metadata is str to str.
        return make_payload(orjson.loads(plain[_LEN.size : end]), plain[end:])
    except (struct.error, ValueError):
        raise PayloadDecryptionError(
            f"payload decrypted with key id {kid!r} does not hold a Baton payload"
        ) from None
