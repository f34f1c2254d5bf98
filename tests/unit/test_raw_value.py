"""``RawValue`` (as Temporal's): a payload a converter hands over and sends as it is."""

from __future__ import annotations

from worker import DataConverter, PayloadConverter, RawValue


def test_a_raw_value_is_its_payload_both_ways() -> None:
    pc = PayloadConverter()
    payload = pc.to_payload({"sku": "apple", "count": 2})
    # asked for as a RawValue, a payload is handed over undecoded (also from the wire)
    assert pc.from_payload(payload, RawValue) == RawValue(payload)
    assert pc.from_wire([payload.model_dump()], [RawValue]) == [RawValue(payload)]
    # and sent as the payload it holds
    assert pc.to_payload(RawValue(payload)) == payload
    assert pc.from_payload(pc.to_payload(RawValue(payload))) == {"sku": "apple", "count": 2}


async def test_a_data_converter_sends_a_raw_value_as_its_payload() -> None:
    dc = DataConverter()
    payload = dc.payload_converter.to_payload([1, 2])
    (sent,) = await dc.encode([RawValue(payload)])
    assert await dc.decode([sent], [list[int]]) == [[1, 2]]
