"""Phantoms as a torch data set, resized once and cached (rendering a radiograph is slow)."""

from __future__ import annotations

import hashlib
import multiprocessing
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from iqgate.data import phantoms
from iqgate.data.object_cxr import ImageItem, parse_annotation
from iqgate.data.phantoms import generate
from iqgate.data.phantoms.dicom_encoding import display_window
from iqgate.data.transforms import ImageTransform
from iqgate.imaging import normalise_imagenet, resize_square, scale_boxes, window_to_unit


@cache
def generator_digest() -> str:
    """A short hash of the phantom generator's source and of this module (the render path
    and the cached record): renders of another version differ."""
    digest = hashlib.sha256()
    for source in [*sorted(Path(phantoms.__file__).parent.glob("*.py")), Path(__file__)]:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:10]


def render_input(
    args: tuple[str, int, int, float, int, int],
) -> tuple[np.ndarray, int, list, list, tuple[int, int], list[str]]:
    """Phantom ``index`` of ``generate(task, n, seed, fraction)`` as the model sees it.

    ``args`` is ``(task, n, seed, fraction, size, index)``; returns the float16 grey
    input [size, size] in [0, 1], the label, the native boxes and shapes, the
    native ``(height, width)`` and the objects' kinds.
    """
    task, n, seed, fraction, size, index = args
    sample = generate(task, n, seed=seed, positive_fraction=fraction)[index]
    centre, width = display_window(sample.image)
    unit = window_to_unit(sample.image.astype(np.float32), centre, width)
    grey = resize_square(unit[None], size)[0].half().numpy()
    return (
        grey,
        int(sample.label),
        list(sample.boxes),
        list(sample.shapes),
        sample.image.shape,
        list(sample.kinds),
    )


class PhantomDataset(Dataset[ImageItem]):
    """``n`` phantoms of one task at the model's input size, in the loaders' item format.

    Each sample is rendered once, shown through the display window its DICOM file
    carries (so training sees what the node sees), resized to ``size`` and kept
    (float16, about ``2 * size**2`` bytes per image); :meth:`materialise` renders them
    all up front, in parallel processes.
    """

    def __init__(
        self,
        task: str,
        n: int,
        *,
        seed: int,
        size: int,
        positive_fraction: float = 0.5,
        transform: ImageTransform | None = None,
    ) -> None:
        self.task, self.n, self.seed, self.size = task, n, seed, size
        self.positive_fraction = positive_fraction
        self.transform = transform
        self._cache: dict[int, tuple[np.ndarray, int, list, list, tuple[int, int], list[str]]] = {}

    def __len__(self) -> int:
        return self.n

    def _args(self, index: int) -> tuple[str, int, int, float, int, int]:
        return (self.task, self.n, self.seed, self.positive_fraction, self.size, index)

    def cache_name(self) -> str:
        """A file name that identifies these renders and the generator that drew them."""
        version = generator_digest()
        return f"{self.task}-{version}-n{self.n}-s{self.seed}-p{self.positive_fraction}-{self.size}px.pt"

    def materialise(
        self, processes: int = 0, progress: bool = False, cache_dir: Path | None = None
    ) -> PhantomDataset:
        """Render every sample now (``processes`` > 1 renders in parallel).

        With ``cache_dir``, renders are read from (or saved to) a file named by
        :meth:`cache_name`, so a second training run skips rendering.
        """
        cache_file = cache_dir / self.cache_name() if cache_dir is not None else None
        if cache_file is not None and cache_file.is_file():
            self._cache.update(torch.load(cache_file, weights_only=False))
        todo = [i for i in range(self.n) if i not in self._cache]
        bar = tqdm(total=len(todo), desc=f"rendering {self.task} phantoms", disable=not progress)
        if processes > 1:
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                for index, rendered in zip(
                    todo, pool.imap(render_input, map(self._args, todo), chunksize=8), strict=True
                ):
                    self._cache[index] = rendered
                    bar.update()
        else:
            for index in todo:
                self._cache[index] = render_input(self._args(index))
                bar.update()
        bar.close()
        if cache_file is not None and todo:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self._cache, cache_file)
        return self

    def with_transform(self, transform: ImageTransform | None) -> PhantomDataset:
        """The same samples (sharing the cache) with another transform."""
        twin = PhantomDataset(
            self.task,
            self.n,
            seed=self.seed,
            size=self.size,
            positive_fraction=self.positive_fraction,
            transform=transform,
        )
        twin._cache = self._cache
        return twin

    def _rendered(
        self, index: int
    ) -> tuple[np.ndarray, int, list, list, tuple[int, int], list[str]]:
        if not 0 <= index < self.n:
            raise IndexError(f"phantom index {index} out of range for {self.n} samples")
        if index not in self._cache:
            self._cache[index] = render_input(self._args(index))
        return self._cache[index]

    def object_kinds(self) -> list[list[str]]:
        """What each sample's objects are (:attr:`~iqgate.data.phantoms.Sample.kinds`)."""
        return [self._rendered(index)[5] for index in range(self.n)]

    def __getitem__(self, index: int) -> ImageItem:
        grey16, label, boxes, shapes, native, _ = self._rendered(index)
        grey = torch.from_numpy(grey16).float()
        if self.transform is not None:
            grey = self.transform(grey)
        native_boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return ImageItem(
            image=normalise_imagenet(grey),
            label=label,
            boxes=scale_boxes(native_boxes, native, self.size),
            native_boxes=native_boxes,
            shapes=parse_annotation(";".join(shapes)),
            name=f"{self.task}-{self.seed}-{index:06d}",
            native_size=(int(native[0]), int(native[1])),
        )
