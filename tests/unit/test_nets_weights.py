"""Starting weights: a checkpoint's backbone is loaded, its head only where it belongs."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from iqgate import nets
from iqgate.study.randomisation import semi_randomised


def _two_class_checkpoint(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(123)
    state = {k: v.contiguous() for k, v in nets.build("resnet18").state_dict().items()}
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    return path, state


def test_a_fitting_head_is_kept_for_a_fine_tune_of_the_same_task(tmp_path: Path) -> None:
    path, state = _two_class_checkpoint(tmp_path)
    model = nets.build("resnet18", weights=path)
    assert torch.equal(model.fc.weight, state["fc.weight"])
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_a_backbone_from_another_task_gets_a_new_head(tmp_path: Path) -> None:
    path, state = _two_class_checkpoint(tmp_path)
    model = nets.build("resnet18", weights=path, new_head=True)
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert not torch.equal(model.fc.weight, state["fc.weight"])
    assert torch.count_nonzero(model.fc.bias) == 0


def test_semi_randomised_nets_never_keep_a_two_class_checkpoints_head(tmp_path: Path) -> None:
    path, state = _two_class_checkpoint(tmp_path)
    first, second = semi_randomised("resnet18", path, seed=1), semi_randomised("resnet18", path, 2)
    for model in (first, second):
        assert torch.equal(model.conv1.weight, state["conv1.weight"])
        assert not torch.equal(model.fc.weight, state["fc.weight"])
    assert not torch.equal(first.fc.weight, second.fc.weight)
    again = semi_randomised("resnet18", path, seed=1)
    assert torch.equal(first.fc.weight, again.fc.weight)
