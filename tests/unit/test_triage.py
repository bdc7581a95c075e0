"""The triage path: ONNX Runtime classifies, torch explains only what needs explaining."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydicom import dcmread

from iqgate.data.phantoms import generate
from iqgate.data.phantoms.dicom_encoding import display_window
from iqgate.imaging import window_to_unit
from iqgate.node.outputs.results import ResultWriter
from iqgate.node.pipeline.assess import ExplainPolicy, assess_frames
from iqgate.node.pipeline.routing import ModelRegistry
from iqgate_testkit.package_factory import tiny_package

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def phantom_frames() -> list[np.ndarray]:
    frames = []
    for sample in generate("cxr", 8, seed=11):
        centre, width = display_window(sample.image)
        frames.append(window_to_unit(sample.image.astype(np.float32), centre, width))
    return frames


@pytest.fixture(scope="module")
def registries(tmp_path_factory, phantom_frames) -> tuple[ModelRegistry, ModelRegistry]:
    folder = tmp_path_factory.mktemp("models")
    tiny_package(folder, "tiny", threshold=0.5, seed=3)
    cpu = torch.device("cpu")
    torch_only = ModelRegistry.from_directory(folder, cpu, use_onnx=False)
    probabilities = [
        a.probability
        for a in assess_frames(torch_only.models[0], phantom_frames, ExplainPolicy(False), cpu)
    ]
    tiny_package(folder, "tiny", threshold=float(np.median(probabilities)), seed=3)
    return ModelRegistry.from_directory(folder, cpu, use_onnx=False), ModelRegistry.from_directory(
        folder, cpu
    )


def test_onnx_and_torch_give_the_same_verdicts_on_phantoms(registries, phantom_frames):
    torch_registry, onnx_registry = registries
    assert onnx_registry.models[0].classifier == "onnxruntime"
    assert torch_registry.models[0].classifier == "torch"
    cpu = torch.device("cpu")
    by_torch = assess_frames(torch_registry.models[0], phantom_frames, ExplainPolicy(False), cpu)
    by_onnx = assess_frames(onnx_registry.models[0], phantom_frames, ExplainPolicy(False), cpu)
    assert [a.flagged for a in by_torch] == [a.flagged for a in by_onnx]
    assert 0 < sum(a.flagged for a in by_onnx) < len(phantom_frames)
    np.testing.assert_allclose(
        [a.probability for a in by_onnx], [a.probability for a in by_torch], atol=1e-4
    )
    for torch_a, onnx_a in zip(by_torch, by_onnx, strict=True):
        assert (onnx_a.saliency is not None) == onnx_a.flagged
        if onnx_a.saliency is not None:
            np.testing.assert_allclose(onnx_a.saliency, torch_a.saliency, atol=1e-5)


def _cuda_provider_available() -> bool:
    import onnxruntime

    return torch.cuda.is_available() and (
        "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    )


@pytest.mark.cuda
@pytest.mark.skipif(
    not _cuda_provider_available(),
    reason="needs a CUDA device and onnxruntime-gpu (the gpu extra)",
)
def test_the_cuda_provider_classifies_on_a_gpu_as_the_cpu_provider_does(registries, phantom_frames):
    _, onnx_registry = registries
    on_cpu = onnx_registry.models[0]
    cuda = torch.device("cuda")
    on_gpu = ModelRegistry.from_directory(on_cpu.directory.parent, cuda).models[0]
    assert on_gpu.onnx.get_providers()[0] == "CUDAExecutionProvider"
    by_cpu = assess_frames(on_cpu, phantom_frames, ExplainPolicy(False), torch.device("cpu"))
    by_gpu = assess_frames(on_gpu, phantom_frames, ExplainPolicy(False), cuda)
    assert [a.flagged for a in by_gpu] == [a.flagged for a in by_cpu]
    np.testing.assert_allclose(
        [a.probability for a in by_gpu], [a.probability for a in by_cpu], atol=1e-3
    )
    for gpu_a in by_gpu:
        assert (gpu_a.saliency is not None) == gpu_a.flagged


def test_explain_all_explains_passing_images_too(registries, phantom_frames):
    _, onnx_registry = registries
    assessed = assess_frames(
        onnx_registry.models[0], phantom_frames[:3], ExplainPolicy(True), torch.device("cpu")
    )
    assert all(a.saliency is not None and a.saliency.shape == (64, 64) for a in assessed)


def test_a_passing_image_that_was_not_explained_has_no_peak_in_report_or_sr(
    registries, phantom_frames, tmp_path
):
    from iqgate_testkit.dicom_factory import make_image

    _, onnx_registry = registries
    loaded = onnx_registry.models[0]
    assessed = assess_frames(loaded, phantom_frames, ExplainPolicy(False), torch.device("cpu"))
    passing = next(a for a in assessed if not a.flagged)
    header = make_image(rows=64, columns=64)
    frame = np.zeros((1, 64, 64), dtype=np.float32)
    writer = ResultWriter(tmp_path, "flagged", "normgrad-conv1x1 combined")
    results = writer.write_image(
        header, frame, loaded.card, [passing], sr_per_series=False, timings_ms={}
    )
    report = results.reports[0]
    assert report.verdict.value == "pass" and not report.explained
    assert report.saliency.peak_xy is None and report.saliency.hotspot_box is None
    assert [o.kind for o in results.outputs] == ["sr"]
    sr = dcmread(results.outputs[0].path)
    assert not any(element.keyword == "GraphicType" for element in sr.iterall())
    flagged = next(a for a in assessed if a.flagged)
    explained = writer.write_image(
        header, frame, loaded.card, [flagged], sr_per_series=False, timings_ms={}
    )
    sr = dcmread(next(o.path for o in explained.outputs if o.kind == "sr"))
    assert any(element.keyword == "GraphicType" for element in sr.iterall())
