"""A registration's protocol, parsed once per content: trials registered under different
registry numbers with the same protocol share one parse, and each still reads its own id
and every other field exactly as a fresh parse would; a bad id is refused as before."""

from __future__ import annotations

import pytest

from tests.trial_helpers import nct_protocol
from trialctl.domain.protocol_file import protocol_from_dict, stored_protocol
from trialctl.domain.protocol_values import ProtocolError


def test_same_protocol_under_two_ids_equals_a_fresh_parse_of_each() -> None:
    data = nct_protocol().to_dict()
    first = stored_protocol({**data, "id": "NCT90000001"})
    second = stored_protocol({**data, "id": "NCT90000002"})

    assert first.id == "NCT90000001" and second.id == "NCT90000002"
    assert first == protocol_from_dict({**data, "id": "NCT90000001"})
    assert second == protocol_from_dict({**data, "id": "NCT90000002"})
    changed = {**data, "id": "NCT90000003", "title": "another title"}
    assert stored_protocol(changed).title == "another title"


def test_a_bad_id_is_refused_even_when_the_content_was_parsed_before() -> None:
    data = nct_protocol().to_dict()
    stored_protocol(data)
    with pytest.raises(ProtocolError, match="letters, digits"):
        stored_protocol({**data, "id": "not an id"})
