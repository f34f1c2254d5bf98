"""Visibility: search attributes, the list-filter language, list and count.

* :mod:`store.visibility.attributes`: system and custom attributes, their
  types and limits (pure);
* :mod:`store.visibility.query`: the lark grammar and its compiler to
  parameterized SQL (pure);
* :mod:`store.visibility.grouping`: a count's ``GROUP BY`` (pure);
* :mod:`store.visibility.listing`: list pages with keyset tokens, and counts;
* :mod:`store.visibility.registry`: the attributes a namespace registers.
"""

from store.visibility.attributes import SYSTEM_ATTRIBUTES, AttributeType, validate_upsert
from store.visibility.query import CompiledQuery, compile_query

__all__ = [
    "SYSTEM_ATTRIBUTES",
    "AttributeType",
    "CompiledQuery",
    "compile_query",
    "validate_upsert",
]
