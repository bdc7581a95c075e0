"""The node against real peers: DCMTK as scanner and plain PACS, Orthanc as PACS."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless
from pynetdicom import AE

from iqgate.node.outputs.uids import OutputUids
from iqgate_testkit.dicom_factory import DX_PRESENTATION, make_image, write_image
from iqgate_testkit.package_factory import tiny_package
from iqgate_testkit.peers import (
    NODE_AE,
    dciodvfy_errors,
    echoscu,
    free_port,
    orthanc,
    require,
    running_node,
    start_node,
    storescp,
    storescu,
    wait_for,
)

PATIENT = "Müller^Jürgen"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    tiny_package(folder, "tiny-cxr", modalities=["DX", "CR"], seed=0)
    tiny_package(folder, "tiny-cmr", modalities=["MR"], seed=1)
    return folder


def stored_uids(output: str) -> int:
    return len(re.findall(r"Received Store Response \(Success\)", output))


def compressed_copy(source: Path, target: Path, syntax: str) -> Path:
    ds = dcmread(source)
    ds.compress(syntax)
    ds.save_as(target, enforce_file_format=True)
    return target


def expected_outputs(path: Path, model: str, per_series: bool = False) -> OutputUids:
    ds = dcmread(path, stop_before_pixels=True)
    return OutputUids.for_image(
        series_instance_uid=ds.SeriesInstanceUID,
        sop_instance_uid=ds.SOPInstanceUID,
        model_name=model,
        model_version="0.0.1",
        sr_per_series=per_series,
    )


def test_images_in_several_syntaxes_reach_orthanc_as_sc_and_sr_in_their_study(tmp_path, models_dir):
    require("storescu", "Orthanc", "dcmcjpeg")
    inputs = tmp_path / "in"
    study = "1.2.826.0.1.3680043.8.498.1.1"
    plain = write_image(
        inputs / "dx-plain.dcm", seed=1, patient_name=PATIENT, charset="ISO_IR 100", study_uid=study
    )
    sources = {
        "": [plain],
        "-xr": [
            compressed_copy(
                write_image(tmp_path / "r.dcm", seed=2, study_uid=study),
                inputs / "dx-rle.dcm",
                RLELossless,
            )
        ],
        "-xv": [
            compressed_copy(
                write_image(tmp_path / "j.dcm", seed=3, study_uid=study),
                inputs / "dx-j2k.dcm",
                JPEG2000Lossless,
            )
        ],
        "-xt": [
            compressed_copy(
                write_image(tmp_path / "l.dcm", seed=4, study_uid=study),
                inputs / "dx-jls.dcm",
                JPEGLSLossless,
            )
        ],
    }
    jpeg = inputs / "dx-jpeg-lossless.dcm"
    subprocess.run(
        [
            "dcmcjpeg",
            "+e1",
            str(write_image(tmp_path / "p.dcm", seed=5, study_uid=study)),
            str(jpeg),
        ],
        check=True,
    )
    sources["-xs"] = [jpeg]
    mr_series = "1.2.826.0.1.3680043.8.498.1.2"
    sources[""] += [
        write_image(
            inputs / f"mr-{i}.dcm",
            seed=10 + i,
            modality="MR",
            study_uid=study,
            series_uid=mr_series,
        )
        for i in range(2)
    ]
    with (
        orthanc(tmp_path) as pacs,
        running_node(tmp_path / "node", models_dir, {"IQGATE_PACS": pacs.destination}) as node,
    ):
        for option, files in sources.items():
            run = storescu(files, node.port, options=[option] if option else [])
            assert run.returncode == 0 and stored_uids(run.stdout + run.stderr) == len(files), (
                run.stderr
            )
        dx_files = [f for files in sources.values() for f in files if "mr-" not in f.name]
        wanted = {u.sc_instance for f in dx_files for u in [expected_outputs(f, "tiny-cxr")]}
        wanted |= {expected_outputs(f, "tiny-cxr").sr_instance for f in dx_files}
        mr_files = [f for f in sources[""] if "mr-" in f.name]
        wanted |= {expected_outputs(f, "tiny-cmr", per_series=True).sc_instance for f in mr_files}
        wanted.add(expected_outputs(mr_files[0], "tiny-cmr", per_series=True).sr_instance)

        def arrived() -> bool:
            return wanted <= {
                i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study)
            }

        wait_for(arrived, 120, "every SC and SR at Orthanc")
        results = sorted((tmp_path / "node" / "results").rglob("*.dcm"))
        assert {p.name.split(".sc.")[0].split(".sr.")[0] for p in results} == wanted
        assert (
            sum(p.name.endswith(".sr.dcm") for p in results) == len(dx_files) + 1
        )  # one SR per MR series
        for path in results:
            assert dciodvfy_errors(path) == [], path
            ds = dcmread(path)
            assert ds.StudyInstanceUID == study
            assert ds.SeriesInstanceUID not in {plain.name, mr_series}
        sc = dcmread(
            next(
                p
                for p in results
                if p.name == f"{expected_outputs(plain, 'tiny-cxr').sc_instance}.sc.dcm"
            )
        )
        assert str(sc.PatientName) == PATIENT and sc.SpecificCharacterSet == "ISO_IR 100"
        assert sc.BurnedInAnnotation == "YES"
        assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == dcmread(plain).SOPInstanceUID
        wait_for(
            lambda: 'iqgate_instances_total{outcome="stored"} 7.0' in node.metrics(),
            10,
            "seven stored instances in /metrics",
        )
        metrics = node.metrics()
        assert (
            f'iqgate_forwards_total{{destination="{pacs.destination}",outcome="success"}}'
            in metrics
        )
        for secret in (PATIENT, "Müller", "FAKE-0001", "ACC00001", "19700101"):
            assert secret not in metrics and secret not in node.logs()


def test_unknown_calling_ae_and_wrong_called_ae_are_refused(tmp_path, models_dir):
    with running_node(
        tmp_path, models_dir, {"IQGATE_ALLOWED_CALLING_AES": "SCANNER,CT1@127.0.0.1"}
    ) as node:
        assert echoscu(node.port, calling="SCANNER").returncode == 0
        assert echoscu(node.port, calling="CT1").returncode == 0
        refused = echoscu(node.port, calling="STRANGER")
        assert refused.returncode != 0 and "Rejected" in refused.stderr + refused.stdout
        assert echoscu(node.port, calling="SCANNER", called="OTHER").returncode != 0
        wait_for(
            lambda: 'iqgate_associations_total{outcome="rejected"} 2.0' in node.metrics(),
            10,
            "two rejected associations in /metrics (extra receivers relay every 0.25 s)",
        )
        assert '"calling_ae": "STRANGER"' in node.logs()


def listening_sockets(port: int) -> int:
    """How many IPv4 sockets listen on ``port`` (``/proc/net/tcp``, state 0A)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[3] == "0A" and int(row[1].split(":")[1], 16) == port)


def test_two_receiving_processes_share_the_port_and_the_spool(tmp_path, models_dir):
    files = [write_image(tmp_path / "in" / f"{i}.dcm", seed=40 + i) for i in range(16)]
    with running_node(tmp_path / "node", models_dir, {"IQGATE_RECEIVE_PROCESSES": "2"}) as node:
        assert listening_sockets(node.port) == 2
        pushes = [threading.Thread(target=storescu, args=([f], node.port)) for f in files]
        for push in pushes:
            push.start()
        for push in pushes:
            push.join()
        wait_for(
            lambda: 'iqgate_instances_total{outcome="stored"} 16.0' in node.metrics(),
            30,
            "16 instances counted as stored by the two receiving processes",
        )
        assert 'iqgate_associations_total{outcome="accepted"} 16.0' in node.metrics()
        second = subprocess.run(
            [sys.executable, "-m", "iqgate.cli", "serve"],
            env={
                **node.env,
                "IQGATE_HTTP_PORT": str(free_port()),
                "IQGATE_SPOOL_DIR": str(tmp_path / "second" / "spool"),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1 and "is in use" in second.stderr  # no silent sharing
        assert listening_sockets(node.port) == 2
        wait_for(
            lambda: len(list((tmp_path / "node" / "results").rglob("*.report.json"))) == 16,
            60,
            "a report for each of the 16 images",
        )
        assert node.terminate() == 0
    assert listening_sockets(node.port) == 0


def sop_uid_of(path: Path) -> str | None:
    """SOP Instance UID of a received file (None while storescp is still writing it)."""
    try:
        return str(dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)
    except (AttributeError, OSError, EOFError):
        return None


def store_raw(path: Path, port: int) -> int:
    """C-STORE a file's bytes as they are (pynetdicom sends a file path without decoding)."""
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(DX_PRESENTATION)
    assoc = ae.associate("127.0.0.1", port, ae_title=NODE_AE)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
        return int(status.Status)
    finally:
        assoc.release()


def test_bad_files_get_failure_statuses_and_the_node_serves_on(tmp_path, models_dir):
    good = write_image(tmp_path / "good.dcm", seed=20)
    no_pixels = make_image(seed=21)
    del no_pixels.PixelData
    no_pixels_path = tmp_path / "no-pixels.dcm"
    no_pixels.save_as(no_pixels_path, enforce_file_format=True)
    truncated = tmp_path / "truncated.dcm"
    data = write_image(tmp_path / "full.dcm", seed=22).read_bytes()
    truncated.write_bytes(data[: len(data) - 5000])
    with running_node(tmp_path / "node", models_dir) as node:
        assert store_raw(no_pixels_path, node.port) == 0xA900
        assert store_raw(truncated, node.port) in (0xA900, 0xC000)
        assert store_raw(good, node.port) == 0x0000
        assert echoscu(node.port).returncode == 0
        wait_for(
            lambda: 'iqgate_instances_total{outcome="not_matching"}' in node.metrics(),
            10,
            "the refused instance in /metrics",
        )
        assert "missing Pixel Data" in node.logs()


def _outputs_of(sent: list[Path]) -> set[str]:
    """SOP Instance UIDs of the SC and SR that the tiny cxr model makes for ``sent``."""
    return {
        uid
        for f in sent
        for outputs in [expected_outputs(f, "tiny-cxr")]
        for uid in (outputs.sc_instance, outputs.sr_instance)
    }


def test_a_node_killed_during_a_push_delivers_every_accepted_instance_once(tmp_path, models_dir):
    files = [write_image(tmp_path / "in" / f"dx-{i}.dcm", seed=100 + i) for i in range(16)]
    with storescp(tmp_path) as pacs:
        env = {"IQGATE_PACS": pacs.destination, "IQGATE_BATCH_MAX": "2"}
        node = start_node(tmp_path / "node", models_dir, env)
        outcome: dict[str, str] = {}

        def push() -> None:
            run = subprocess.run(
                [
                    "storescu",
                    "-v",
                    "-aet",
                    "SCANNER",
                    "-aec",
                    NODE_AE,
                    "127.0.0.1",
                    str(node.port),
                    *map(str, files),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            outcome["log"] = run.stdout + run.stderr

        pusher = threading.Thread(target=push)
        pusher.start()
        wait_for(
            lambda: len(list((tmp_path / "node" / "spool" / "objects").rglob("*.dcm"))) >= 5,
            60,
            "five stored instances",
        )
        node.kill()
        pusher.join(60)
        accepted = stored_uids(outcome["log"])
        # five files were stored; the last of them may have been killed before its response
        assert 4 <= accepted <= len(files)
        wanted = _outputs_of(files[:accepted])
        # storescu sends one instance at a time: the one in flight at the kill may have
        # been stored durably with its response lost, and then its results go out too.
        possible = wanted | _outputs_of(files[accepted : accepted + 1])
        restarted = start_node(tmp_path / "node", models_dir, env | {"IQGATE_PORT": str(node.port)})
        try:

            def received() -> set[str]:
                return {uid for p in pacs.files() if (uid := sop_uid_of(p))}

            wait_for(
                lambda: wanted <= received(), 120, "every accepted instance's results at storescp"
            )
            time.sleep(1.0)
            uids = [sop_uid_of(p) for p in pacs.files()]
            assert wanted <= set(uids) <= possible
            resent = len(uids) - len(set(uids))
            assert resent <= 2 * 32, f"{resent} re-sends: only deliveries in flight may repeat"
            assert restarted.terminate() == 0
        finally:
            if restarted.process.poll() is None:
                restarted.process.kill()
