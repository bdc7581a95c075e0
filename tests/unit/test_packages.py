"""Model packages round-trip, refuse tampered weights, and export to ONNX faithfully."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iqgate import nets
from iqgate.errors import ModelPackageError
from iqgate.packages import (
    ModelCard,
    export_onnx,
    find_packages,
    load_package,
    onnx_is_current,
    read_card,
    save_package,
)


def card(**overrides: object) -> ModelCard:
    fields = {
        "name": "tiny-test",
        "version": "1.0.0",
        "task": "cxr-foreign-object",
        "description": "test package",
        "intended_use": "tests only; not for clinical use",
        "architecture": "resnet18",
        "input_size": 32,
        "classes": ["no finding", "foreign object"],
        "decision_threshold": 0.4,
        "threshold_rule": "youden",
    }
    return ModelCard(**(fields | overrides))


@pytest.fixture()
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return nets.build("resnet18")


def test_package_round_trip_gives_the_same_logits(tmp_path, model):
    saved = save_package(tmp_path / "pkg", model, card())
    assert len(saved.weights_sha256) == 64
    loaded, loaded_card = load_package(tmp_path / "pkg")
    assert loaded_card == saved
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    assert nets.architecture_of(loaded) == "resnet18" and not loaded.training
    assert find_packages(tmp_path) == [tmp_path / "pkg"]


def test_half_precision_package_is_close_and_records_its_dtype(tmp_path, model):
    saved = save_package(tmp_path / "pkg", model, card(), half=True)
    assert saved.weights_dtype == "float16"
    loaded, _ = load_package(tmp_path / "pkg")
    x = torch.randn(2, 3, 32, 32)
    assert next(loaded.parameters()).dtype == torch.float32
    torch.testing.assert_close(loaded(x), model(x), atol=0.05, rtol=0.05)


def test_tampered_weights_are_refused(tmp_path, model):
    save_package(tmp_path / "pkg", model, card())
    weights = tmp_path / "pkg" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelPackageError, match="does not match its card"):
        load_package(tmp_path / "pkg")


def test_invalid_card_names_the_problem(tmp_path, model):
    save_package(tmp_path / "pkg", model, card())
    path = tmp_path / "pkg" / "model.json"
    fields = json.loads(path.read_text())
    fields["decision_threshold"] = 3
    path.write_text(json.dumps(fields))
    with pytest.raises(ModelPackageError, match="decision_threshold"):
        read_card(tmp_path / "pkg")
    with pytest.raises(ModelPackageError, match="no model.json"):
        read_card(tmp_path)


def test_onnx_export_matches_torch_logits(tmp_path, model):
    ort = pytest.importorskip("onnxruntime")
    save_package(tmp_path / "pkg", model, card())
    assert not onnx_is_current(tmp_path / "pkg")
    path = export_onnx(tmp_path / "pkg")
    assert onnx_is_current(tmp_path / "pkg")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 32, 32)
        (logits,) = session.run(None, {"images": x.numpy()})
        np.testing.assert_allclose(logits, model(x).detach().numpy(), atol=1e-4, rtol=1e-4)
    save_package(tmp_path / "pkg", model, card(version="1.0.1"))
    assert not onnx_is_current(tmp_path / "pkg")
