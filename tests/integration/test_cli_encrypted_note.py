"""The CLI says why what it shows stays encrypted.

A describe of a run whose memo was encrypted showed the memo as ciphertext
and said nothing, whether ``$BATON_ENCRYPTION_KEYS`` was not set, held other
key ids, or held a wrong key under the payload's id (a typo, a rotation gone
wrong): the three read the same. A note on stderr now tells which, naming the
key ids; stdout is as it was, and a key that opens everything adds no note.
"""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import AesGcmCodec, Client, DataConverter, Worker, workflow
from worker.codec import KEY_ENV_VAR, format_key_spec, generate_key

pytestmark = pytest.mark.integration


@workflow.defn(name="Sealed")
class Sealed:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_a_describe_says_why_a_payload_stays_encrypted(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    codec = AesGcmCodec(keys={"k1": key}, active_key_id="k1")
    async with await Client.connect(region.url, data_converter=DataConverter(codec=codec)) as c:
        await c.create_namespace("default")
        # no worker: the run waits, its memo stored encrypted
        await c.start_workflow("Sealed", id="sealed", task_queue="sealed", memo={"m": "secret"})

    async def describe() -> tuple[dict[str, object], str]:
        code, out, err = await baton_json(region.config_path, "workflow", "describe", "sealed")
        assert code == 0, err
        return out, err

    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    out, err = await describe()
    assert out["execution"]["memo"]["m"]["metadata"]["encoding"] == "binary/encrypted"  # type: ignore[index]
    assert "1 payload(s) shown are encrypted (key id k1)" in err, err
    assert f"{KEY_ENV_VAR} is not set" in err, err

    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec({"k2": generate_key()}, active_key_id="k2"))
    _, err = await describe()
    assert "stay encrypted" in err and "UNKNOWN_ENCRYPTION_KEY" in err and "'k1'" in err, err

    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec({"k1": generate_key()}, active_key_id="k1"))
    _, err = await describe()
    assert "stay encrypted" in err and "PAYLOAD_DECRYPTION_FAILED" in err and "'k1'" in err, err

    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec({"k1": key}, active_key_id="k1"))
    out, err = await describe()
    assert out["execution"]["memo"] == {"m": "secret"}  # type: ignore[index]
    assert "note" not in err, err


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.added: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def add(self, item: str) -> str:
        self.added.append(item)
        return f"added {item}"

    @workflow.query
    def items(self) -> list[str]:
        return self.added


async def test_an_update_whose_result_the_cli_cannot_decrypt_is_not_reported_failed(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workflow update` without the keys of the workers that encrypt: the
    update ran and completed, and the CLI exited 1 with INVALID_ARGUMENT (the
    result it could not decode), so a user sent it again and it ran twice."""
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(region.url, data_converter=DataConverter(codec=codec)) as c:
        await c.create_namespace("default")
        async with Worker(c, task_queue="counter", workflows=[Counter]):
            h = await c.start_workflow("Counter", id="counter", task_queue="counter")
            monkeypatch.delenv(KEY_ENV_VAR, raising=False)
            code, out, err = await baton_json(
                region.config_path, "workflow", "update", "counter", "add", "--input", '"one"'
            )
            assert code == 0, (out, err)
            assert out["result"]["metadata"]["encoding"] == "binary/encrypted", out
            assert out["run_id"] == h.run_id and out["update_id"], out
            assert "1 payload(s) shown are encrypted (key id k1)" in err, err
            assert await h.query("items") == ["one"]
