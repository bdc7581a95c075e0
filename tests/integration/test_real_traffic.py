"""Traffic as modalities send it: every storage class stored, only what a model was made
for assessed, the rest recorded with its reason and forwarded in router mode."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from iqgate.cli import main
from iqgate.data.phantoms import generate, write_dicom
from iqgate.data.phantoms.off_target import OffTarget
from iqgate_testkit.node_state import spool_query
from iqgate_testkit.peers import require, running_node, storescp, wait_for

SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"
PYDICOM_FILES = {
    "reportsi.dcm": "not an image",  # Basic Text SR
    "liver_1frame.dcm": "not an image",  # Segmentation
    "rtplan.dcm": "not an image",  # RT Plan
    "MR_small.dcm": "no model applies: derived",  # a head MR, DERIVED\SECONDARY
    "CT_small.dcm": "no model applies: modality",
}


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Files as a site would send them, each with the outcome it must get."""
    folder = tmp_path_factory.mktemp("traffic")
    syntax = [ExplicitVRLittleEndian]
    expected: dict[str, tuple[Path, str]] = {}

    def add(name: str, paths: list[Path], outcome: str) -> None:
        for index, path in enumerate(paths):
            expected[f"{name}-{index}"] = (path, outcome)

    cxr, cmr = generate("cxr", 2, seed=9), generate("cmr", 2, seed=9)
    add("chest", write_dicom(cxr, folder / "chest", transfer_syntaxes=syntax), "assessed")
    add("cardiac", write_dicom(cmr, folder / "cardiac", transfer_syntaxes=syntax), "assessed")
    for kind, outcome in (
        (OffTarget.KNEE_RADIOGRAPH, "no model applies: body_part"),
        (OffTarget.DERIVED, "no model applies: derived"),
    ):
        add(
            kind.value,
            write_dicom(cxr[:1], folder / kind.value, transfer_syntaxes=syntax, off_target=kind),
            outcome,
        )
    brain = write_dicom(
        cmr[:1], folder / "brain", transfer_syntaxes=syntax, off_target=OffTarget.BRAIN_MR
    )
    add("brain", brain, "no model applies: description")
    for name, outcome in PYDICOM_FILES.items():
        target = folder / "pydicom" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(get_testdata_file(name), target)
        add(name, [target], outcome)
    return expected


def test_route_prints_which_model_would_assess_each_file_and_why_not(
    traffic, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("IQGATE_MODELS_DIR", str(SHIPPED_MODELS))
    site = tmp_path / "routing.yaml"
    site.write_text("models:\n  cxr-foreign-object:\n    extend: {body_parts: [KNEE]}\n")
    for path, outcome in traffic.values():
        assert main(["route", str(path)]) == 0
        printed = capsys.readouterr().out
        first = printed.splitlines()[0]
        if outcome == "assessed":
            assert first.endswith(("cxr-foreign-object", "cmr-lvot")), printed
        else:
            assert first.endswith(f"not assessed ({outcome})"), printed
    knee = traffic[f"{OffTarget.KNEE_RADIOGRAPH.value}-0"][0]
    monkeypatch.setenv("IQGATE_ROUTING_FILE", str(site))
    assert main(["route", str(knee)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": cxr-foreign-object")


def test_a_routing_file_naming_an_unknown_model_stops_the_command(capsys, monkeypatch, tmp_path):
    site = tmp_path / "routing.yaml"
    site.write_text("models:\n  cmr-lvt:\n    extend: {description_patterns: [x]}\n")
    monkeypatch.setenv("IQGATE_MODELS_DIR", str(SHIPPED_MODELS))
    monkeypatch.setenv("IQGATE_ROUTING_FILE", str(site))
    assert main(["route", str(tmp_path)]) == 1
    assert "cmr-lvt" in capsys.readouterr().err


def test_dcmsend_of_mixed_traffic_stores_all_assesses_only_the_intended_and_forwards_all(
    traffic, tmp_path
):
    require("dcmsend", "storescp")
    folder = tmp_path / "send"
    folder.mkdir()
    for key, (path, _) in traffic.items():
        shutil.copy(path, folder / f"{key}.dcm")
    with (
        storescp(tmp_path) as pacs,
        running_node(
            tmp_path / "node",
            SHIPPED_MODELS,
            {
                "IQGATE_PACS": pacs.destination,
                "IQGATE_FORWARD_ORIGINALS": "true",
                "IQGATE_CLASSIFIER": "torch",
            },
        ) as node,
        spool_query(node.spool) as query,
    ):
        sent = subprocess.run(
            [
                "dcmsend",
                "-aet",
                "SCANNER",
                "-aec",
                "IQGATE",
                "127.0.0.1",
                str(node.port),
                "--scan-directories",
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        try:
            wait_for(
                lambda: len([j for j in query.jobs() if j.verdict]) == len(traffic),
                180,
                "a verdict for every instance",
            )
        except AssertionError:
            states = [(j.sop_class_uid, j.state.value, j.verdict, j.reason) for j in query.jobs()]
            raise AssertionError(f"{states}\n{node.logs()[-3000:]}") from None
        jobs = {job.sop_instance_uid: job for job in query.jobs()}
        for key, (path, outcome) in traffic.items():
            job = jobs[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)]
            if outcome == "assessed":
                assert job.verdict in ("flagged", "pass"), (key, job.reason)
            else:
                assert job.verdict == "not_assessed", (key, job.verdict)
                assert job.reason, key

        def forwarded() -> set[str]:
            """SOP Instance UIDs storescp has finished writing (a file being written is not)."""
            uids = set()
            for path in pacs.files():
                try:
                    uids.add(str(dcmread(path, stop_before_pixels=True).SOPInstanceUID))
                except (InvalidDicomError, EOFError, AttributeError):
                    continue
            return uids

        wait_for(lambda: set(jobs) <= forwarded(), 120, "every original forwarded to the PACS")
        jpip = AE(ae_title="SCANNER")
        jpip.add_requested_context(MRImageStorage, "1.2.840.10008.1.2.4.94")  # JPIP referenced
        jpip.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
        association = jpip.associate("127.0.0.1", node.port, ae_title="IQGATE")
        assert association.is_established
        association.release()
        wait_for(lambda: '"event": "contexts_refused"' in node.logs(), 10, "the refusal logged")
        metrics = node.metrics()
        assert 'iqgate_not_assessed_total{reason="not an image"} 3.0' in metrics
        assert 'iqgate_not_assessed_total{reason="no model applies: body_part"} 1.0' in metrics
        logs = node.logs()
        assert logs.count('"event": "not_assessed"') == sum(
            1 for _, outcome in traffic.values() if outcome != "assessed"
        )
