"""Fixtures of the reliability suite: a scripted model server and a fault proxy, as processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.servers import FaultProxy, Process, stub_server


@pytest.fixture
def stub() -> Iterator[Process]:
    server = stub_server().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(stub: Process) -> Iterator[FaultProxy]:
    p = FaultProxy.before(stub.url).start()
    yield p
    p.stop()
