"""A custom search attribute's value of the wrong kind says how to send it."""

from __future__ import annotations

import pytest

from store.errors import InvalidArgument
from store.visibility.attributes import AttributeType, normalize_value


def test_a_bare_word_for_a_keyword_list_says_to_send_a_list() -> None:
    """Regression: `--search-attribute Tags=a` answered "'a' is not a
    KeywordList value" and no more, where a Keyword given a number says how
    to quote it."""
    with pytest.raises(InvalidArgument) as caught:
        normalize_value("Tags", AttributeType.KEYWORD_LIST, "a")
    message = caught.value.message
    assert "send a list of strings" in message and """Tags='["a"]'""" in message, message
    assert normalize_value("Tags", AttributeType.KEYWORD_LIST, ["a"]) == ["a"]


def test_a_number_for_a_keyword_list_names_no_list_hint() -> None:
    with pytest.raises(InvalidArgument) as caught:
        normalize_value("Tags", AttributeType.KEYWORD_LIST, 5)
    assert "send a list" not in caught.value.message
