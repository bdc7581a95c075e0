"""Fuzzing the decode path with hypothesis: mutated files and random image attributes.

The contract under test: for any bytes, the SCP's header check
(:func:`iqgate.node.ingest.header.read_header` + :func:`~iqgate.node.ingest.header.instance_problem`)
raises nothing but :data:`iqgate.node.ingest.header.PARSE_ERRORS`, and the worker's decode
(:func:`iqgate.node.pipeline.decode.decode_file`, :func:`iqgate.imaging.frames_from_dataset`)
raises nothing but :class:`iqgate.errors.ImagingError`. Anything else is collected as
``unexpected`` with the mutation that caused it.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from iqgate.errors import ImagingError
from iqgate.imaging import frames_from_dataset
from iqgate.node.ingest.header import PARSE_ERRORS, instance_problem, read_header
from iqgate.node.pipeline.decode import decode_file
from iqgate_testkit.dicom_factory import make_image

FUZZ_MAX_PIXELS = 2**22
"""The decode guard during fuzzing: mutated dimensions must not allocate much."""


def base_files() -> list[tuple[bytes, str]]:
    """Valid files to mutate, with their transfer syntax: native, implicit, RLE."""
    files = []
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless):
        ds = make_image(rows=24, columns=20, seed=3)
        ds.WindowCenter, ds.WindowWidth = "700", "900"
        if syntax == RLELossless:
            ds.compress(RLELossless)
        else:
            ds.file_meta.TransferSyntaxUID = syntax
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)
        files.append((buffer.getvalue(), str(syntax)))
    return files


MUTATION = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "overwrite", "delete"]),
    st.floats(0.0, 1.0),
    st.binary(min_size=1, max_size=8),
)


def mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    """Apply byte-level mutations at relative positions (after the 132-byte preamble)."""
    out = bytearray(data)
    for kind, where, payload in mutations:
        position = 132 + int(where * max(0, len(out) - 133))
        if kind == "flip" and position < len(out):
            out[position] ^= payload[0] or 0xFF
        elif kind == "truncate":
            del out[position:]
        elif kind == "insert":
            out[position:position] = payload
        elif kind == "overwrite":
            out[position : position + len(payload)] = payload
        elif kind == "delete":
            del out[position : position + len(payload)]
    return bytes(out)


def _dataset_part(data: bytes) -> BytesIO:
    """The bytes after the file meta group (what would travel in a C-STORE)."""
    position = 132
    while position + 8 <= len(data) and data[position : position + 2] == b"\x02\x00":
        vr = data[position + 4 : position + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            length = int.from_bytes(data[position + 8 : position + 12], "little")
            position += 12 + length
        else:
            position += 8 + int.from_bytes(data[position + 6 : position + 8], "little")
    return BytesIO(data[position:])


def decode_outcome(
    decode: Callable[[], object], label: str, counts: dict[str, int], unexpected: list[str]
) -> None:
    """Count a decode as ``decoded`` or ``imaging_error``; anything else is unexpected."""
    try:
        decode()
        counts["decoded"] += 1
    except ImagingError:
        counts["imaging_error"] += 1
    except Exception as exc:  # noqa: BLE001 - what the fuzzing looks for
        unexpected.append(f"{label}: {type(exc).__name__}: {exc}")


def mutated_file_outcomes(examples: int, seed_value: int = 0) -> dict[str, object]:
    """Run ``examples`` mutated files through the SCP check and the decoder."""
    bases = base_files()
    counts = {"decoded": 0, "imaging_error": 0, "scp_refused": 0, "scp_accepted": 0}
    unexpected: list[str] = []
    with tempfile.TemporaryDirectory(prefix="iqgate-fuzz-") as scratch:
        target = Path(scratch) / "mutated.dcm"

        @seed(seed_value)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.integers(0, len(bases) - 1), st.lists(MUTATION, min_size=1, max_size=4))
        def one(index: int, mutations: list[tuple[str, float, bytes]]) -> None:
            data, syntax = bases[index]
            mutated = mutate(data, mutations)
            try:
                header = read_header(_dataset_part(mutated), syntax)
                refused = instance_problem(header) is not None
                counts["scp_refused" if refused else "scp_accepted"] += 1
            except PARSE_ERRORS:
                counts["scp_refused"] += 1
            except Exception as exc:  # noqa: BLE001 - what the fuzzing looks for
                unexpected.append(f"read_header {syntax} {mutations}: {type(exc).__name__}: {exc}")
            target.write_bytes(mutated)
            decode_outcome(
                lambda: decode_file(target, max_pixels=FUZZ_MAX_PIXELS),
                f"decode_file {syntax} {mutations}",
                counts,
                unexpected,
            )

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one()
    return {"examples": examples, **counts, "unexpected": unexpected[:20]}


ATTRIBUTES = st.fixed_dictionaries(
    {
        "Rows": st.integers(0, 80),
        "Columns": st.integers(0, 80),
        "BitsAllocated": st.sampled_from([16, 16, 8, 0, 1, 3, 12, 32, 64]),
        "BitsStored": st.sampled_from([12, 8, 16, 0, 1, 40]),
        "HighBit": st.one_of(st.none(), st.integers(0, 40)),
        "PixelRepresentation": st.integers(0, 2),
        "SamplesPerPixel": st.sampled_from([1, 1, 0, 3, 4]),
        "PhotometricInterpretation": st.sampled_from(
            ["MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR", "", "XYZ"]
        ),
        "NumberOfFrames": st.one_of(st.none(), st.integers(0, 5)),
        "WindowCenter": st.one_of(st.none(), st.floats(-1e6, 1e6).map(lambda v: f"{v:.6g}")),
        "WindowWidth": st.one_of(st.none(), st.floats(-10, 1e6).map(lambda v: f"{v:.6g}")),
        "RescaleSlope": st.one_of(st.none(), st.floats(-1e3, 1e3).map(lambda v: f"{v:.6g}")),
        "VOILUTFunction": st.sampled_from([None, "LINEAR", "LINEAR_EXACT", "SIGMOID", "FOO"]),
    }
)


def attribute_outcomes(examples: int, seed_value: int = 0) -> dict[str, object]:
    """Random group 0028 attributes over random pixel bytes into ``frames_from_dataset``."""
    counts = {"decoded": 0, "imaging_error": 0}
    unexpected: list[str] = []

    @seed(seed_value)
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(ATTRIBUTES, st.integers(-1, 12000), st.booleans(), st.integers(0, 2**16))
    def one(attributes: dict[str, object], size: int, rle: bool, noise: int) -> None:
        ds: Dataset = make_image(rows=8, columns=8)
        for keyword, value in attributes.items():
            if value is not None:
                setattr(ds, keyword, value)
        if attributes["HighBit"] is None:
            ds.HighBit = max(0, ds.BitsStored - 1)
        if size < 0:  # exactly what the attributes declare
            bits = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated
            size = bits * int(ds.get("NumberOfFrames", 1) or 1) // 8
        if attributes["RescaleSlope"] is not None:
            ds.RescaleIntercept = "0"
        data = np.random.default_rng(noise).integers(0, 256, size, dtype=np.uint8).tobytes()
        if rle:
            ds.file_meta.TransferSyntaxUID = RLELossless
            ds.PixelData = encapsulate([data or b"\0\0"])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = data
        decode_outcome(
            lambda: frames_from_dataset(ds),
            f"{attributes} size={size} rle={rle}",
            counts,
            unexpected,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one()
    return {"examples": examples, **counts, "unexpected": unexpected[:20]}
