"""The console's settings and its metric on the node's registry when no console ran."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from iqgate.config import SettingsError, load_settings
from iqgate.node.console.metrics import FeedbackCollector, read_feedback_counts


def test_the_console_is_off_unless_a_port_is_set():
    assert load_settings(environ={}).console_port is None
    assert load_settings(environ={"IQGATE_CONSOLE_PORT": "8081"}).console_port == 8081


def test_a_trusted_header_without_trusted_proxies_stops_the_start():
    with pytest.raises(SettingsError, match="console_trusted_proxies"):
        load_settings(environ={"IQGATE_CONSOLE_TRUSTED_USER_HEADER": "X-Forwarded-User"})
    settings = load_settings(
        environ={
            "IQGATE_CONSOLE_TRUSTED_USER_HEADER": "X-Forwarded-User",
            "IQGATE_CONSOLE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.2",
        }
    )
    assert settings.console_trusted_proxies == ["127.0.0.1", "10.0.0.2"]


def test_the_feedback_metric_is_declared_before_any_console_index_exists(tmp_path):
    assert read_feedback_counts(tmp_path / "absent.sqlite3") == {}
    registry = CollectorRegistry()
    registry.register(FeedbackCollector(lambda: read_feedback_counts(tmp_path / "absent.sqlite3")))
    assert "# TYPE iqgate_console_feedback gauge" in generate_latest(registry).decode()
