"""Shared fixtures (tiny models keep the suite fast on 2 CPU cores) and the group markers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from iqgate import nets
from iqgate_testkit.tiny_cnn import TinyCnn

torch.set_num_threads(1)

GROUPS = ("unit", "integration", "campaign")
"""The folders of tests/; each test gets its folder's marker (``pytest -m "not campaign"``)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if group in GROUPS:
            item.add_marker(group)


@pytest.fixture()
def tiny_cnn() -> TinyCnn:
    torch.manual_seed(0)
    return TinyCnn().eval()


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return nets.build("resnet18")


@pytest.fixture(scope="module")
def efficientnet_b0() -> nn.Module:
    torch.manual_seed(0)
    return nets.build("efficientnet_b0")
