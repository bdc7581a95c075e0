"""The node on DICOMweb both ways: Orthanc's DICOMweb plugin sends an image to the node
by STOW-RS, and the node sends its results back to Orthanc by STOW-RS and, as its
delivery rules say, the signed report to a webhook; once both have them, results
retention deletes the result files."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from iqgate_testkit.dicom_factory import write_image
from iqgate_testkit.package_factory import tiny_package
from iqgate_testkit.peers import free_port, orthanc, require, running_node, wait_for
from iqgate_testkit.webhook_receiver import WebhookReceiver

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
TOKEN = "orthanc-sends-with-this-token"


def orthanc_call(server, method: str, path: str, payload: object | bytes) -> object:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{path}", data=data, method=method
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def uploaded_sop(pacs, uploaded: dict) -> str:
    return pacs.get(f"/instances/{uploaded['ID']}")["MainDicomTags"]["SOPInstanceUID"]


def test_an_image_stowed_by_orthanc_comes_back_as_an_sr_and_a_signed_report(tmp_path):
    require("Orthanc")
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip("needs Orthanc's DICOMweb plugin (Debian orthanc-dicomweb, in .ci/run)")
    models = tmp_path / "models"
    tiny_package(models, "tiny-cxr", modalities=["DX", "CR"], seed=0)
    source = write_image(tmp_path / "in" / "dx.dcm", seed=7)
    (tmp_path / "tokens").write_text(f"ORTHANC {TOKEN}\n")
    (tmp_path / "hook-secret").write_text("hook-secret\n")
    plugin = {
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    with orthanc(tmp_path / "pacs", plugin) as pacs, WebhookReceiver(b"hook-secret") as hook:
        stow_port = free_port()
        pacs_url = f"dicomweb+http://127.0.0.1:{pacs.http_port}/dicom-web"
        hook_url = f"webhook+http://127.0.0.1:{hook.port}/hook"
        rules = [
            {"destination": pacs_url, "kinds": ["sr"]},
            {"destination": hook_url, "verdicts": ["flagged", "pass"]},
        ]
        env = {
            "IQGATE_STOW_HOST": "127.0.0.1",
            "IQGATE_STOW_PORT": str(stow_port),
            "IQGATE_STOW_TOKENS_FILE": str(tmp_path / "tokens"),
            "IQGATE_PACS": f"{pacs_url},{hook_url}?secret_file={tmp_path / 'hook-secret'}",
            "IQGATE_DELIVERY_RULES": json.dumps(rules),
            "IQGATE_RESULTS_RETENTION_S": "0",
            "IQGATE_HOUSEKEEPING_INTERVAL_S": "0.5",
        }
        with running_node(tmp_path / "node", models, env) as node:
            uploaded = orthanc_call(pacs, "POST", "/instances", source.read_bytes())
            server = {
                "Url": f"http://127.0.0.1:{stow_port}/",
                "HttpHeaders": {"Authorization": f"Bearer {TOKEN}"},
            }
            orthanc_call(pacs, "PUT", "/dicom-web/servers/iqgate", server)
            orthanc_call(
                pacs, "POST", "/dicom-web/servers/iqgate/stow", {"Resources": [uploaded["ID"]]}
            )

            def modalities() -> list[str]:  # of the series in the source image's study
                series = pacs.get(f"/studies/{uploaded['ParentStudy']}/series")
                return sorted(s["MainDicomTags"].get("Modality", "") for s in series)

            wait_for(lambda: "SR" in modalities(), 120, "the node's SR at Orthanc")
            wait_for(lambda: hook.accepted, 60, "the signed report at the webhook")
            assert modalities() == ["DX", "SR"]  # no SC overlay: the rules send only SRs there
            [(_, body)] = hook.accepted
            [report] = json.loads(body)
            assert report["source"]["sop_instance_uid"] == uploaded_sop(pacs, uploaded)
            assert "stored" in node.logs() and "ORTHANC" in node.logs()
            assert 'iqgate_stow_instances_total{outcome="stored"} 1.0' in node.metrics()

            def purged_files() -> float:
                found = re.search(
                    r"^iqgate_results_purged_files_total (\S+)$", node.metrics(), re.MULTILINE
                )
                return float(found.group(1)) if found else 0.0

            wait_for(lambda: purged_files() >= 2, 30, "the delivered results purged")
            assert not [p for p in (tmp_path / "node" / "results").rglob("*") if p.is_file()]
