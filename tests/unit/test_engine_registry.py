"""The one registry of engines (``engines.base``): every engine keeps the contract, an unknown one is refused."""

from __future__ import annotations

import inspect

import pytest

from dativo_ingest.engines import get_engine
from dativo_ingest.engines.base import ALIASES, ENGINES, Engine, conformance_report


@pytest.mark.parametrize("name", [*ENGINES, *ALIASES])
def test_every_engine_keeps_the_contract(name):
    engine = get_engine(name)
    assert engine.name == ALIASES.get(name, name)
    for method in ("read", "preflight"):
        ours, contract = getattr(type(engine), method), getattr(Engine, method)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(contract).parameters)
        assert ours.__doc__  # says what this engine does there


def test_an_unknown_engine_names_the_available_ones(tmp_path):
    with pytest.raises(NotImplementedError, match=r"engine 'jdbc' is not implemented \(available: native, airbyte, "
                                                  r"singer, spark\)"):
        get_engine("jdbc")
    with pytest.raises(NotImplementedError, match=r"test-connector --engine jdbc: not implemented \(available: "
                                                  r"airbyte, singer, native\)"):
        conformance_report("jdbc", "csv", project_root=tmp_path)
