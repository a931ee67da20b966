"""Shared fixtures. Everything a test needs is made here or shipped in the repository: no network."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The embedded digits dataset, written once per test session (about 7 s)."""
    from data_prep.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a Python-level connection fails the test: nothing may download."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import socket

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
