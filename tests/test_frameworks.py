"""Every framework module is the Framework Protocol: each name defined, nothing undeclared."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from equiv import frameworks
from equiv.frameworks import CASE_API, Framework

PROTOCOL = {name for name, _ in inspect.getmembers(Framework, inspect.isfunction)}


def public_functions(module: Any) -> set[str]:
    return {name for name, value in vars(module).items()
            if callable(value) and not isinstance(value, type) and not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__}


@pytest.mark.parametrize("name", frameworks.NAMES)
def test_each_module_defines_the_protocol_and_declares_the_rest(name: str) -> None:
    if not frameworks.is_installed(name):
        pytest.skip(f"{name} is not installed")
    module = frameworks.load(name)
    missing = sorted(n for n in PROTOCOL if not callable(getattr(module, n, None)))
    assert not missing, f"equiv.frameworks.{name} lacks {missing} (raise Unsupported where it cannot)"
    undeclared = sorted(public_functions(module) - PROTOCOL - set(module.OWN))
    assert not undeclared, (f"equiv.frameworks.{name} defines {undeclared}: add them to Framework, or to "
                            "its OWN if only this framework has them")
    assert set(module.OWN) <= public_functions(module), "OWN names a function the module lacks"
    assert set(module.OWN) <= set(frameworks.OWN_NAMES), "add the module's OWN names to frameworks.OWN_NAMES"
    assert module.name == name


def test_the_case_api_is_in_the_protocol_and_documented() -> None:
    assert set(CASE_API) <= PROTOCOL
    for name in CASE_API:
        assert (inspect.getdoc(getattr(Framework, name)) or "").strip(), f"Framework.{name} has no line"
