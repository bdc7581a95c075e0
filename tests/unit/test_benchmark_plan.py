"""A benchmark plan: profiles, validation, and the training cache key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from iqgate.study.experiments import BenchmarkPlan, profile_defaults, training_work_dir
from iqgate.study.train import TRAIN_PRESETS


def reduced_cmr_plan(**changes: object) -> BenchmarkPlan:
    defaults = profile_defaults("reduced", "lvot")
    plan = BenchmarkPlan(
        data="phantoms-cmr",
        compare_with="lvot",
        archs=defaults.archs,
        train=defaults.train,
        phantom_sizes=defaults.phantom_sizes,
        profile="reduced",
    )
    return replace(plan, **changes)


def test_the_reduced_profile_trains_with_the_demo_presets_as_they_are():
    assert profile_defaults("reduced", "lvot").train == TRAIN_PRESETS["demo-cmr"]
    assert profile_defaults("reduced", "object-cxr").train == TRAIN_PRESETS["demo-cxr"]


def test_checkpoints_are_kept_apart_by_augmentation_and_precision_but_not_by_epochs():
    plan = reduced_cmr_plan()
    cache = Path("/cache")
    base = training_work_dir(plan, plan.train, cache)
    assert training_work_dir(plan, replace(plan.train, epochs=30), cache) == base
    assert training_work_dir(reduced_cmr_plan(augment="lossless"), plan.train, cache) != base
    assert training_work_dir(reduced_cmr_plan(cpu_bf16=True), plan.train, cache) != base


def test_an_unknown_augmentation_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        reduced_cmr_plan(augment="mixup")
