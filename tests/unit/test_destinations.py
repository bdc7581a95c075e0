"""Destinations are typed URLs without secrets in their names; delivery rules decide
what goes where from (kind, verdict, modality, calling AE) alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from iqgate.config import (
    DicomDestination,
    DicomWebDestination,
    SettingsError,
    WebhookDestination,
    load_settings,
    parse_destination,
)
from iqgate.delivery_rules import DeliveryRule, DeliveryRules
from iqgate.destinations import TlsFiles
from iqgate.node.store.records import OutputFile


@pytest.fixture()
def secret(tmp_path):
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    return path


def test_dicoms_carries_its_tls_files_and_is_named_without_them(tmp_path):
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("pem")
    text = (
        f"dicoms://PACS@pacs:2762?ca={tmp_path}/ca.pem&cert={tmp_path}/c.pem&key={tmp_path}/k.pem"
    )
    destination = parse_destination(text)
    assert destination == DicomDestination(
        "PACS", "pacs", 2762, TlsFiles(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")
    )
    assert str(destination) == destination.url == "dicoms://PACS@pacs:2762"
    assert str(parse_destination("dicom://PACS@pacs:104")) == "PACS@pacs:104"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dicoms://PACS@pacs:2762?cert=/etc/hostname", "cert= and key= must be given together"),
        ("dicoms://PACS@pacs:2762?ca=/no/such.pem", "ca='/no/such.pem' is not a file"),
        ("dicoms://PACS@pacs:2762?pin=1", "unknown parameter pin"),
        ("dicom://PACS@pacs:104?ca=/etc/hostname", "parameters need dicoms://"),
        ("dicomweb+https:///dicom-web", "must look like dicomweb\\+https://"),
        ("dicomweb+ftp://host/x", "unknown scheme .dicomweb\\+ftp."),
        ("dicomweb+https://u:pw@host/x", "no password in the URL"),
        ("dicomweb+https://u@host/x", "needs both a user"),
        ("webhook+https://host/hook", "needs secret_file="),
        ("webhook+https://host/hook?secret_file=/no/such", "cannot read the webhook secret file"),
        ("smtp://host", "unknown scheme 'smtp'"),
    ],
)
def test_a_bad_destination_url_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_destination(text)


def test_dicomweb_names_exclude_user_and_secret_files(secret):
    basic = parse_destination(
        f"dicomweb+https://iqgate@pacs.example:8443/dicom-web/?password_file={secret}"
    )
    assert isinstance(basic, DicomWebDestination)
    assert str(basic) == "dicomweb+https://pacs.example:8443/dicom-web"
    assert basic.root == "https://pacs.example:8443/dicom-web"
    assert basic.authorization() == "Basic aXFnYXRlOnMzY3JldA=="  # iqgate:s3cret
    bearer = parse_destination(f"dicomweb+http://127.0.0.1:8042/dicom-web?token_file={secret}")
    assert bearer.authorization() == "Bearer s3cret"


def test_webhook_reads_its_secret_from_the_file(secret):
    hook = parse_destination(f"webhook+https://ris.example/hooks/iqgate?secret_file={secret}")
    assert isinstance(hook, WebhookDestination)
    assert hook.secret() == b"s3cret" and str(hook) == "webhook+https://ris.example/hooks/iqgate"


def test_an_empty_secret_file_is_refused(tmp_path):
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        parse_destination(f"webhook+http://h/x?secret_file={tmp_path / 'empty'}")


def rules_of(pacs: str, rules: list[dict[str, object]] | str) -> DeliveryRules:
    rule_text = rules if isinstance(rules, str) else __import__("json").dumps(rules)
    return load_settings(environ={"IQGATE_PACS": pacs, "IQGATE_DELIVERY_RULES": rule_text}).rules


def test_without_rules_dicom_peers_take_every_dicom_output_and_webhooks_flagged_reports(secret):
    rules = rules_of(f"dicom://PACS@pacs:104,webhook+http://ris/hook?secret_file={secret}", [])
    assert rules.destinations_for("sc", "pass", "DX", "CT1") == ("PACS@pacs:104",)
    assert rules.destinations_for("report", "flagged", "DX", "CT1") == ("webhook+http://ris/hook",)
    assert rules.destinations_for("report", "pass", "DX", "CT1") == ()
    assert not rules.unrouted("not_assessed", "US", "ANY")


def test_a_rule_names_its_destination_as_written_or_by_its_name(secret):
    hook = f"webhook+http://ris/hook?secret_file={secret}"
    rules = rules_of(
        f"dicom://PACS@pacs:104,{hook}",
        [
            {"destination": "dicom://PACS@pacs:104", "kinds": ["sr"]},
            {"destination": "webhook+http://ris/hook", "verdicts": ["pass"]},
        ],
    )
    assert rules.destinations_for("sr", "pass", "DX", "CT1") == ("PACS@pacs:104",)
    assert rules.destinations_for("report", "pass", "DX", "CT1") == ("webhook+http://ris/hook",)
    written = rules_of(f"PACS@pacs:104,{hook}", [{"destination": hook, "kinds": ["report"]}])
    assert written.destinations_for("report", "pass", "DX", "CT1") == ("webhook+http://ris/hook",)


def test_rules_route_by_kind_verdict_modality_and_calling_ae():
    rules = rules_of(
        "dicom://PACS@pacs:104,dicom://ARCHIVE@archive:104",
        [
            {
                "destination": "dicom://PACS@pacs:104",
                "kinds": ["sr", "sc"],
                "verdicts": ["flagged"],
            },
            {"destination": "PACS@pacs:104", "kinds": ["sr"], "modalities": ["mr"]},
            {"destination": "ARCHIVE@archive:104", "kinds": ["original"], "calling_aes": ["CT1"]},
        ],
    )
    assert rules.destinations_for("sc", "flagged", "DX", "CT1") == ("PACS@pacs:104",)
    assert rules.destinations_for("sc", "pass", "DX", "CT1") == ()
    assert rules.destinations_for("sr", "pass", "MR", "CT1") == ("PACS@pacs:104",)
    assert rules.destinations_for("original", "pass", "DX", "CT1") == ("ARCHIVE@archive:104",)
    assert rules.destinations_for("original", "pass", "DX", "CT2") == ()
    assert rules.unrouted("pass", "DX", "CT2")  # no rule matches: counted, sent nowhere


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[{"destination": "OTHER@h:1"}]', "no such destination"),
        (
            '[{"destination": "PACS@pacs:104", "kinds": ["report"]}]',
            "dicom destination cannot take report",
        ),
        (
            '[{"destination": "PACS@pacs:104", "verdicts": ["maybe"]}]',
            "at 0.verdicts.0: Input should be",
        ),
        ('[{"destination": "PACS@pacs:104", "colour": "red"}]', "colour"),
        ("{not json", "must be a JSON list of rules"),
    ],
)
def test_a_bad_rule_stops_the_start_with_its_reason(rules, message):
    with pytest.raises(SettingsError, match=message):
        rules_of("dicom://PACS@pacs:104", rules)


def test_a_plan_pairs_each_output_with_its_destinations():
    rules = DeliveryRules.resolve(
        [("A@h:1", "dicom"), ("webhook+http://h/x", "webhook")],
        [DeliveryRule(destination="A@h:1", kinds=("sr",))],
    )
    sr, sc, report = (
        OutputFile("sr", Path("sr"), "1"),
        OutputFile("sc", Path("sc"), "2"),
        OutputFile("report", Path("r"), "3"),
    )
    assert rules.plan([sr, sc, report], "flagged", "DX", "CT1") == [
        (sr, "A@h:1"),
        (report, "webhook+http://h/x"),
    ]
    assert rules.plan([sr, sc, report], "pass", "DX", "CT1") == [(sr, "A@h:1")]


def test_without_destinations_no_image_counts_as_unrouted():
    assert not DeliveryRules.resolve([], []).unrouted("pass", "DX", "CT1")


def test_rules_resolve_without_settings():
    rules = DeliveryRules.resolve(
        [("A@h:1", "dicom")], [DeliveryRule(destination="A@h:1", kinds=("sr",))]
    )
    assert rules.destinations_for("sr", "pass", "DX", "X") == ("A@h:1",)
    assert rules.destinations_for("sc", "pass", "DX", "X") == ()
