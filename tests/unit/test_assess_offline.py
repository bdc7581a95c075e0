"""``iqgate assess`` runs the node's pipeline on files, without the network."""

from __future__ import annotations

import json

from iqgate.cli import main
from iqgate_testkit.dicom_factory import write_image
from iqgate_testkit.package_factory import tiny_package


def test_assess_writes_reports_overlays_and_srs(tmp_path, capsys, monkeypatch):
    tiny_package(tmp_path / "models")
    inputs = tmp_path / "in"
    write_image(inputs / "a.dcm", seed=1)
    write_image(inputs / "b.dcm", seed=2)
    write_image(inputs / "mr.dcm", seed=3, modality="MR")
    (inputs / "notes.txt").write_text("not DICOM")
    monkeypatch.setenv("IQGATE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("IQGATE_DEVICE", "cpu")
    out = tmp_path / "out"
    assert main(["assess", str(inputs), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "3 images: 2 flagged, 0 passed, 1 not assessed, 0 failed, 1 skipped" in printed.out
    assert "skipped" in printed.err and "notes.txt" in printed.err
    reports = sorted(out.rglob("*.report.json"))
    assert len(reports) == 2
    report = json.loads(reports[0].read_text())[0]
    assert report["verdict"] == "flagged" and report["explained"] is True
    assert len(list(out.rglob("*.sc.dcm"))) == 2 and len(list(out.rglob("*.sr.dcm"))) == 2


def test_the_node_never_assesses_its_own_outputs(tmp_path, capsys, monkeypatch):
    tiny_package(tmp_path / "models", modalities=())
    write_image(tmp_path / "in" / "a.dcm", seed=1)
    monkeypatch.setenv("IQGATE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("IQGATE_DEVICE", "cpu")
    monkeypatch.setenv("IQGATE_CLASSIFIER", "torch")
    assert main(["assess", str(tmp_path / "in"), "--out", str(tmp_path / "first")]) == 0
    overlays = list((tmp_path / "first").rglob("*.sc.dcm"))
    assert len(overlays) == 1
    capsys.readouterr()
    assert main(["assess", str(overlays[0]), "--out", str(tmp_path / "second")]) == 0
    assert "1 images: 0 flagged, 0 passed, 1 not assessed" in capsys.readouterr().out
