"""Settings come from YAML and the environment; invalid ones stop the start, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from iqgate.config import AllowedCaller, DicomDestination, SettingsError, load_settings


def test_defaults_are_the_documented_ones():
    s = load_settings(environ={})
    assert (s.ae_title, s.host, s.port, s.http_host, s.http_port) == (
        "IQGATE",
        "0.0.0.0",
        11112,
        "0.0.0.0",
        8080,
    )
    assert s.spool_dir == Path("./var/spool") and s.results_dir == Path("./var/results")
    assert s.models_dir == Path("./models") and s.device == "auto" and s.overlays == "flagged"
    assert s.pacs == [] and s.allowed_calling_aes == [] and s.forward_originals is False
    assert s.normgrad_variant == "conv1x1" and s.series_quiet_s == 10.0
    assert s.receive_processes == 2 and s.decode_processes == 1 and s.decode_timeout_s == 120.0


def test_environment_overrides_yaml(tmp_path):
    config = tmp_path / "iqgate.yaml"
    config.write_text(
        "ae_title: GATE1\nport: 104\npacs: PACS@10.0.0.5:104\nforward_originals: true\n"
    )
    s = load_settings(
        config, {"IQGATE_PORT": "11113", "IQGATE_ALLOWED_CALLING_AES": "CT1, MR2@10.0.0.9"}
    )
    assert s.ae_title == "GATE1" and s.port == 11113 and s.forward_originals is True
    assert s.destinations == [DicomDestination("PACS", "10.0.0.5", 104)]
    assert s.allowed_callers == [AllowedCaller("CT1"), AllowedCaller("MR2", "10.0.0.9")]
    assert s.allowed_callers[1].allows("MR2", "10.0.0.9") and not s.allowed_callers[1].allows(
        "MR2", "10.0.0.8"
    )
    assert s.allowed_callers[0].allows("CT1", "anywhere")


def test_destinations_are_dicom_urls_and_the_bare_form_is_still_accepted():
    s = load_settings(environ={"IQGATE_PACS": "dicom://PACS@10.0.0.5:104, ARCH@archive:11112"})
    assert s.destinations == [
        DicomDestination("PACS", "10.0.0.5", 104),
        DicomDestination("ARCH", "archive", 11112),
    ]
    assert [d.url for d in s.destinations] == [
        "dicom://PACS@10.0.0.5:104",
        "dicom://ARCH@archive:11112",
    ]
    assert str(s.destinations[0]) == "PACS@10.0.0.5:104"  # the delivery table's and metrics' key


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"IQGATE_PORT": "eleven"}, "IQGATE_PORT"),
        ({"IQGATE_PORT": "70000"}, "IQGATE_PORT"),
        ({"IQGATE_PACS": "PACS@host"}, "AE@host:port"),
        ({"IQGATE_AE_TITLE": "A_TITLE_THAT_IS_FAR_TOO_LONG"}, "not a valid AE title"),
        ({"IQGATE_OVERLAYS": "some"}, "IQGATE_OVERLAYS"),
        ({"IQGATE_PACS": "http://PACS@host:104"}, "unknown scheme 'http'"),
        ({"IQGATE_PORTT": "1"}, "unknown setting environment variable IQGATE_PORTT"),
        ({"IQGATE_TLS_CERT": "/c.pem"}, "TLS_CERT and IQGATE_TLS_KEY"),
        ({"IQGATE_RECEIVE_PROCESSES": "0"}, "IQGATE_RECEIVE_PROCESSES"),
    ],
)
def test_invalid_settings_are_named(environ, match):
    with pytest.raises(SettingsError, match=match):
        load_settings(environ=environ)


def test_unknown_yaml_key_is_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("ae_titel: X\n")
    with pytest.raises(SettingsError, match="key 'ae_titel'"):
        load_settings(config, {})


def test_the_cli_stops_with_the_message(tmp_path, capsys, monkeypatch):
    from iqgate.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "list"]) == 0  # defaults are valid
    config = tmp_path / "bad.yaml"
    config.write_text("port: -1\n")
    assert main(["--config", str(config), "serve"]) == 2
    assert "port" in capsys.readouterr().err
