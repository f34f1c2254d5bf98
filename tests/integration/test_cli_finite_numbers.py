"""A NaN passes every range check of a number option: it is a usage error naming
the option, as an out-of-range number is, and nothing is sent."""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("value", ["nan", "-NaN"])
async def test_a_ramp_percent_of_nan_is_a_usage_error(
    client: Client, region: Region, value: str
) -> None:
    code, out, _ = await baton_json(
        region.config_path, "deployment", "set-ramping", "dep", "b1", "--percent", value
    )
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR", out
    assert "--percent" in out["error"]["message"], out
