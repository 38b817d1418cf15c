"""Registering handlers with @task: options, validation, sync/async detection, outcome encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobkeeper import ConfigError, JobContext
from jobkeeper.worker import BackoffPolicy, Registry, default_registry, task
from jobkeeper.worker.outcomes import MAX_MESSAGE, MAX_TRACEBACK, encode_result, error_entry
from tests.worker import handlers


def test_task_registers_the_handler_and_returns_it_unchanged() -> None:
    registry = Registry()

    @registry.task("send-email", queue="communication", max_attempts=4, timeout=30, priority=8, backoff=2.5)
    async def send(payload: Any, ctx: JobContext) -> None:
        return None

    spec = registry["send-email"]
    assert spec.handler is send
    assert spec.is_async
    assert (spec.queue, spec.max_attempts, spec.timeout, spec.priority) == ("communication", 4, 30, 8)
    assert spec.backoff == BackoffPolicy.fixed(2.5)
    assert "send-email" in registry
    assert len(registry) == 1
    assert registry.names == ["send-email"]


def test_sync_handlers_and_async_callables_are_told_apart() -> None:
    registry = Registry()

    class AsyncHandler:
        async def __call__(self, payload: Any, ctx: JobContext) -> None:
            return None

    registry.task("sync")(handlers.crunch)
    registry.task("callable")(AsyncHandler())
    assert not registry["sync"].is_async
    assert registry["callable"].is_async


def test_the_module_level_task_fills_the_given_or_the_default_registry() -> None:
    registry = Registry()
    task("only-here", registry=registry)(handlers.crunch)
    assert "only-here" in registry
    assert "only-here" not in default_registry


def test_a_second_handler_for_a_type_is_refused_but_re_registering_the_same_is_fine() -> None:
    registry = Registry()
    registry.task("crunch")(handlers.crunch)
    registry.task("crunch")(handlers.crunch)
    with pytest.raises(ConfigError, match="already has a handler"):
        registry.task("crunch")(handlers.refuse)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"priority": 11}, "priority"),
        ({"isolation": "fiber"}, "isolation"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Registry().task("x", **options)


def test_process_isolation_needs_an_importable_sync_handler() -> None:
    registry = Registry()

    async def local_async(payload: Any, ctx: Any) -> None:
        return None

    def local_sync(payload: Any, ctx: Any) -> None:
        return None

    with pytest.raises(ConfigError, match="sync handler"):
        registry.task("a", isolation="process")(local_async)
    with pytest.raises(ConfigError, match="module level"):
        registry.task("b", isolation="process")(local_sync)
    registry.task("c", isolation="process")(handlers.spin_forever)


def test_error_entries_are_bounded_and_storable() -> None:
    entry = json.loads(error_entry("ValueError", "x\x00" * MAX_MESSAGE, "t" * (2 * MAX_TRACEBACK)))
    assert entry["type"] == "ValueError"
    assert len(entry["message"]) == MAX_MESSAGE
    assert "\x00" not in entry["message"]
    assert len(entry["traceback"]) == MAX_TRACEBACK
    assert entry["traceback"].startswith("…")


def test_results_must_be_json() -> None:
    assert encode_result(None) is None
    assert encode_result({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    with pytest.raises(TypeError):
        encode_result({1, 2})
    with pytest.raises(ValueError, match="NUL"):
        encode_result("a\x00b")
    with pytest.raises(ValueError, match="Out of range"):
        encode_result(float("nan"))
