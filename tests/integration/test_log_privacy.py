"""No patient identifier in any log line, whoever writes it (the node, or a library)."""

from __future__ import annotations

import io
import json
import logging
import warnings

import pytest
import structlog
from pydicom.dataset import Dataset

from iqgate.node.ops.logs import configure_logging, get_logger
from iqgate.node.ops.redaction import (
    REDACTED,
    REDACTOR,
    IdentifierRedactor,
    identifier_values,
    redact_quoted,
)
from iqgate_testkit.dicom_factory import make_image
from iqgate_testkit.package_factory import tiny_package
from iqgate_testkit.peers import require, running_node, storescu, wait_for

# Each patient: the image's charset and identifiers, chosen to trip the libraries'
# warnings (a one-component name for highdicom, an over-long component for pydicom).
PATIENTS = [
    {"name": "ASLDTIMONOtest", "id": "PID-51873", "birth": "19561231", "accession": "ACX88121"},
    {"name": "", "id": "PID-51874", "birth": "", "accession": ""},
    {
        "name": "Ñúñez^Jösé",
        "id": "PID-51875",
        "birth": "19480229",
        "accession": "ACX88123",
        "charset": "ISO_IR 192",
    },
    {
        "name": "Verylongfamilyname" * 4 + "^Given",
        "id": "PID-51876",
        "birth": "19991111",
        "accession": "ACX88124",
    },
]


@pytest.fixture
def logging_restored():
    """configure_logging changes process-wide state: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog_config = structlog.get_config()
    with warnings.catch_warnings():  # restores warnings.showwarning and the filters
        yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**structlog_config)


def _identifiers(patient: dict[str, str]) -> list[str]:
    name_parts = [p for p in patient["name"].split("^") if p]
    return [v for v in (patient["id"], patient["birth"], patient["accession"], *name_parts) if v]


def test_quoted_literals_in_library_text_are_replaced():
    text = redact_quoted("Invalid value for VR PN: 'DOE'. The string \"O'Brien\" is b'x' fine")
    assert "DOE" not in text and "O'Brien" not in text and "b'x'" not in text
    assert text.startswith("Invalid value for VR PN: ")
    assert redact_quoted("can't decode it") == "can't decode it"


def test_remembered_identifiers_and_name_components_are_replaced_as_words():
    ds = Dataset()
    ds.PatientName = "Doe^Jo^^Dr"
    ds.PatientID = "12345"
    ds.AccessionNumber = ""
    assert identifier_values(ds) == {"Doe^Jo^^Dr", "12345"}
    redactor = IdentifierRedactor()
    redactor.remember_dataset(ds)
    assert redactor.redact("patient DOE, Jo (12345) seen by Dr. Jones") == (
        f"patient {REDACTED}, {REDACTED} ({REDACTED}) seen by {REDACTED}. Jones"
    )
    assert redactor.redact("Joanna Does 123456") == "Joanna Does 123456"


def test_the_nodes_own_values_stay_readable_when_a_name_component_matches_them(
    logging_restored,
):
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    ds = Dataset()
    ds.PatientName = "PHANTOM^CXR^00001"
    REDACTOR.remember_dataset(ds)
    get_logger("test").info("assessed", model="cxr-foreign-object", reason="CXR view of PHANTOM")
    line = json.loads(stream.getvalue())
    assert line["model"] == "cxr-foreign-object"
    assert line["reason"] == f"{REDACTED} view of {REDACTED}"


def test_the_oldest_identifiers_are_forgotten_beyond_the_limit():
    redactor = IdentifierRedactor(max_remembered=2)
    redactor.remember(["AAA", "BBB", "CCC"])
    assert redactor.redact("AAA BBB CCC") == f"AAA {REDACTED} {REDACTED}"


def test_library_warnings_and_records_become_json_events_without_quoted_values(logging_restored):
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    warnings.simplefilter("always")
    warnings.warn('The string "SMITHJOHN" is unlikely to be a name', UserWarning)
    logging.getLogger("pynetdicom.assoc").warning("Rejected: %r", "SMITHJOHN")
    get_logger("test").info("ours", reason="fine")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["library_warning", "library_log", "ours"]
    assert lines[0]["category"] == "UserWarning"
    assert lines[1]["logger"] == "pynetdicom.assoc"
    assert "SMITHJOHN" not in stream.getvalue()


def test_pushed_identifiers_never_reach_the_nodes_output(tmp_path):
    require("storescu")
    models = tmp_path / "models"
    tiny_package(models, "tiny-cxr", modalities=["DX", "CR"], seed=0)
    tiny_package(models, "tiny-cmr", modalities=["MR"], seed=1)
    files = []
    for index, patient in enumerate(PATIENTS):
        for modality in ("DX", "MR"):
            ds = make_image(
                modality=modality,
                seed=700 + 2 * index + (modality == "MR"),
                patient_name=patient["name"],
                charset=patient.get("charset"),
            )
            ds.PatientID = patient["id"]
            ds.PatientBirthDate = patient["birth"]
            ds.AccessionNumber = patient["accession"]
            path = tmp_path / "in" / f"{index}-{modality}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns of the over-long name here
                ds.save_as(path, enforce_file_format=True)
            files.append(path)
    env = {
        "IQGATE_EXPLAIN": "all",
        "IQGATE_OVERLAYS": "all",
        "IQGATE_DECODE_PROCESSES": "1",  # decoding in its own process, logging too
        "IQGATE_LOG_LEVEL": "debug",
    }
    with running_node(tmp_path / "node", models, env) as node:
        result = storescu(files, node.port)
        assert result.returncode == 0, result.stdout + result.stderr
        results = tmp_path / "node" / "results"
        wait_for(
            lambda: len(list(results.rglob("*.sr.dcm"))) == len(files),
            120,
            "an SR for every image (MR per series)",
        )
        node.terminate()
        output = node.logs()
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the node wrote no log"
    for line in lines:
        json.loads(line)  # every line of output is a JSON event, library output included
    assert "library_warning" in output, "highdicom's one-component name warning was not logged"
    for patient in PATIENTS:
        for value in _identifiers(patient):
            assert value.lower() not in output.lower(), f"{value!r} in the node's output"
