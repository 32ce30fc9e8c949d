"""Fixtures for the ring suite: every behavioural test runs on both backends."""

import pytest

from uringbpf.uring import Ring


@pytest.fixture(params=["kernel", "threads"])
def backend(request):
    return request.param


@pytest.fixture
def make_ring(backend):
    """``make_ring(entries=8, **kw)``: a Ring on the parametrised backend, closed afterwards."""
    rings = []

    def make(entries=8, **kw):
        ring = Ring(entries, backend=backend, **kw)
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        ring.close()


@pytest.fixture
def ring(make_ring):
    return make_ring(16)
