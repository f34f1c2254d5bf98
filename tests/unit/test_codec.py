"""AES-256-GCM payload codec: round trips, rotation, tampering and key specs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from worker.codec import AesGcmCodec, format_key_spec, generate_key
from worker.converter import DataConverter, make_payload, payload_bytes
from worker.errors import InvalidArgumentError, PayloadDecryptionError, UnknownEncryptionKeyError
from worker.wire import Payload

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
MARKER = "baton-plaintext-marker-7f3a9c2e"
ENCRYPTED_META = {"encoding": "binary/encrypted", "encryption-cipher": "AES256-GCM"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def codec(active: str = "k1", **keys: bytes) -> AesGcmCodec:
    return AesGcmCodec(keys=keys or {"k1": K1}, active_key_id=active)


def b64_forms(raw: bytes) -> list[str]:
    """The base64 text ``raw`` turns into at each of the three byte alignments.

    Only the 4-character groups made of ``raw``'s bytes alone are kept: the
    groups at either end also depend on the neighbouring bytes.
    """
    forms = []
    for shift in range(3):
        enc = b64(b"\0" * shift + raw)
        start, end = -(-shift // 3) * 4, (shift + len(raw)) // 3 * 4
        forms.append(enc[start:end])
    return forms


def assert_no_key_material(text: str, *keys: bytes) -> None:
    for key in keys:
        for form in (b64(key), key.hex(), repr(key), *b64_forms(key)):
            assert form not in text


def with_data(payload: Payload, data: bytes) -> Payload:
    return make_payload(dict(payload.metadata), data)


def with_meta(payload: Payload, **changes: str) -> Payload:
    return Payload(metadata={**payload.metadata, **changes}, data=payload.data)


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# --------------------------------------------------------------------------- round trips

VALUES: list[Any] = [
    None,
    b"\x00\x01raw bytes\xff",
    b"",
    {"text": MARKER, "n": 42, "nested": [1, 2.5, {"ok": True, "none": None}]},
    MARKER,
    [1, "two", [3]],
    0,
]


async def test_values_round_trip_through_data_converter() -> None:
    converter = DataConverter(codec=codec())
    payloads = await converter.encode(VALUES)
    assert all(p.metadata == {**ENCRYPTED_META, "encryption-key-id": "k1"} for p in payloads)
    assert await converter.decode(payloads) == VALUES


async def test_inner_metadata_and_data_survive() -> None:
    inner = make_payload({"encoding": "json/plain", "x-custom": "é ünïcode"}, b'{"a":1}')
    c = codec()
    [outer] = await c.encode([inner])
    assert "x-custom" not in outer.metadata
    assert await c.decode([outer]) == [inner]


async def test_encoded_data_hides_plaintext() -> None:
    raw = MARKER.encode()
    forms = [MARKER, *b64_forms(raw)]
    # The detector must see the marker when nothing is encrypted, or the check below proves nothing.
    plain_wire = "".join(p.model_dump_json() for p in await DataConverter().encode(VALUES))
    assert any(form in plain_wire for form in forms)

    payloads = await DataConverter(codec=codec()).encode(VALUES)
    for payload in payloads:
        wire = payload.model_dump_json()
        assert not any(form in wire for form in forms)
        assert raw not in payload_bytes(payload)
        assert "json/plain" not in wire  # the inner metadata is encrypted too


async def test_same_value_encrypts_differently_each_time() -> None:
    c = codec()
    [a], [b] = (
        await c.encode([make_payload({}, b"same")]),
        await c.encode([make_payload({}, b"same")]),
    )
    assert a.data != b.data
    assert payload_bytes(a)[:12] != payload_bytes(b)[:12]  # fresh 96-bit nonce
    assert await c.decode([a, b]) == [make_payload({}, b"same")] * 2


# --------------------------------------------------------------------------- rotation and keys


async def test_rotation_reads_payloads_of_the_retired_key() -> None:
    old = await codec("k1", k1=K1).encode([make_payload({"encoding": "binary/plain"}, b"old")])
    rotated = codec("k2", k1=K1, k2=K2)
    new = await rotated.encode([make_payload({"encoding": "binary/plain"}, b"new")])
    assert new[0].metadata["encryption-key-id"] == "k2"
    decoded = await rotated.decode([*old, *new])
    assert [payload_bytes(p) for p in decoded] == [b"old", b"new"]
    assert rotated.active_key_id == "k2"
    assert rotated.key_ids == {"k1", "k2"}


async def test_unknown_key_id_names_the_key() -> None:
    [payload] = await codec("k1", k1=K1).encode([make_payload({}, b"x")])
    with pytest.raises(UnknownEncryptionKeyError) as info:
        await codec("k2", k2=K2).decode([payload])
    err = info.value
    assert err.code == "UNKNOWN_ENCRYPTION_KEY"
    assert "'k1'" in err.message
    assert "add" in err.message and "keys" in err.message
    assert err.details == {"key_id": "k1"}
    assert_no_key_material(str(err), K1, K2)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 16, b"\x00" * 31, b"\x00" * 33, "x" * 32])
def test_key_of_wrong_length_is_rejected(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="'kbad'"):
        AesGcmCodec(keys={"good": K1, "kbad": bad}, active_key_id="good")


def test_active_key_must_be_held() -> None:
    with pytest.raises(InvalidArgumentError, match="'k9'"):
        AesGcmCodec(keys={"k1": K1}, active_key_id="k9")


@pytest.mark.parametrize("kid", ["", "a,b", "a:b", "*a", " a", "x" * 129])
def test_malformed_key_id_is_rejected(kid: str) -> None:
    with pytest.raises(InvalidArgumentError):
        AesGcmCodec(keys={kid: K1}, active_key_id=kid)


def test_repr_shows_no_key_material() -> None:
    text = repr(codec("k2", k1=K1, k2=K2))
    assert "k1" in text and "k2" in text
    assert_no_key_material(text, K1, K2)


def test_generate_key() -> None:
    a, b = generate_key(), generate_key()
    assert len(a) == 32 and a != b
    AesGcmCodec(keys={"k": a}, active_key_id="k")


# --------------------------------------------------------------------------- tampering


async def encrypted(c: AesGcmCodec | None = None) -> Payload:
    [payload] = await (c or codec()).encode([make_payload({"encoding": "json/plain"}, b'"v"')])
    return payload


@pytest.mark.parametrize(
    "index", [0, 11, 12, 20, -1], ids=["nonce", "nonce-end", "ct", "ct2", "tag"]
)
async def test_flipped_bit_fails_authentication(index: int) -> None:
    payload = await encrypted()
    tampered = with_data(payload, flip(payload_bytes(payload), index))
    with pytest.raises(PayloadDecryptionError) as info:
        await codec().decode([tampered])
    assert info.value.code == "PAYLOAD_DECRYPTION_FAILED"
    assert_no_key_material(str(info.value), K1)


@pytest.mark.parametrize("keep", [0, 5, 12, 27])
async def test_truncated_data_fails(keep: int) -> None:
    payload = await encrypted()
    with pytest.raises(PayloadDecryptionError):
        await codec().decode([with_data(payload, payload_bytes(payload)[:keep])])


async def test_invalid_base64_fails() -> None:
    payload = await encrypted()
    with pytest.raises(PayloadDecryptionError):
        await codec().decode([Payload(metadata=payload.metadata, data="abc")])


async def test_relabelled_key_id_fails_even_with_the_same_key() -> None:
    # Both ids hold the same bytes, so only the key id bound as associated data can catch this.
    c = codec("a", a=K1, b=K1)
    payload = await encrypted(c)
    with pytest.raises(PayloadDecryptionError):
        await c.decode([with_meta(payload, **{"encryption-key-id": "b"})])


async def test_relabelled_to_another_key_fails() -> None:
    c = codec("k1", k1=K1, k2=K2)
    payload = await encrypted(c)
    with pytest.raises(PayloadDecryptionError):
        await c.decode([with_meta(payload, **{"encryption-key-id": "k2"})])


@pytest.mark.parametrize(
    "changes",
    [{"encryption-cipher": "AES128-CBC"}, {"encryption-key-id": ""}],
    ids=["cipher", "no-key-id"],
)
async def test_unsupported_envelope_fails(changes: dict[str, str]) -> None:
    payload = await encrypted()
    with pytest.raises(PayloadDecryptionError):
        await codec().decode([with_meta(payload, **changes)])


async def test_plaintext_payloads_pass_through_unchanged() -> None:
    plain = [
        make_payload({"encoding": "json/plain"}, b'{"x": 1}'),
        make_payload({"encoding": "binary/null"}, b""),
        Payload(),
    ]
    c = codec()
    enc = await encrypted(c)
    decoded = await c.decode([plain[0], enc, *plain[1:]])
    assert decoded[0] is plain[0]
    assert decoded[2:] == plain[1:]
    assert payload_bytes(decoded[1]) == b'"v"'
    assert await DataConverter(codec=c).decode(plain[:2]) == [{"x": 1}, None]


# --------------------------------------------------------------------------- key specs


async def test_from_env_first_entry_is_active() -> None:
    c = AesGcmCodec.from_env(environ={"BATON_ENCRYPTION_KEYS": f"k1:{b64(K1)},k2:{b64(K2)}"})
    assert c.active_key_id == "k1"
    assert c.key_ids == {"k1", "k2"}
    payload = await encrypted(c)
    assert await codec("k1", k1=K1).decode([payload]) == await c.decode([payload])


async def test_from_env_star_marks_active_and_spaces_are_ignored() -> None:
    spec = f" k1:{b64(K1)} , *k2 : {b64(K2)} ,"
    c = AesGcmCodec.from_env("MY_KEYS", environ={"MY_KEYS": spec})
    assert c.active_key_id == "k2"
    payload = await encrypted(c)
    assert payload.metadata["encryption-key-id"] == "k2"
    await codec("k2", k2=K2).decode([payload])


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_ENCRYPTION_KEYS", f"k2:{b64(K2)}")
    assert AesGcmCodec.from_env().active_key_id == "k2"


def test_format_key_spec_round_trips() -> None:
    spec = format_key_spec({"k1": K1, "k2": K2}, active_key_id="k2")
    assert spec == f"k2:{b64(K2)},k1:{b64(K1)}"
    c = AesGcmCodec.from_key_spec(spec)
    assert c.active_key_id == "k2"
    assert c.key_ids == {"k1", "k2"}
    with pytest.raises(InvalidArgumentError):
        format_key_spec({"k1": K1[:16]}, active_key_id="k1")


def test_from_env_unset_or_empty() -> None:
    for environ in ({}, {"BATON_ENCRYPTION_KEYS": "  "}):
        with pytest.raises(InvalidArgumentError, match="BATON_ENCRYPTION_KEYS"):
            AesGcmCodec.from_env(environ=environ)


SHORT = bytes(range(200, 216))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (f"{b64(K1)}", "entry 1"),  # no key id
        (f"k1:{b64(K1)},{b64(K2)}", "entry 2"),
        (f"{b64(K1)}:k1", "entry 1"),  # id and key swapped
        (f":{b64(K1)}", "entry 1"),
        (f"k1:{b64(K1)[:-3]}!!", "'k1'.*base64"),
        (f"k1:{b64(SHORT)}", "'k1'.*32 bytes"),
        (f"k1:{b64(K1)},k1:{b64(K2)}", "'k1'.*twice"),
        (f"*k1:{b64(K1)},*k2:{b64(K2)}", "several active"),
        (",, ,", "no keys"),
    ],
)
def test_bad_key_specs(spec: str, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as info:
        AesGcmCodec.from_env(environ={"BATON_ENCRYPTION_KEYS": spec})
    assert "BATON_ENCRYPTION_KEYS" in str(info.value) or "'k1'" in str(info.value)
    assert_no_key_material(str(info.value), K1, K2, SHORT)
    assert info.value.__cause__ is None
