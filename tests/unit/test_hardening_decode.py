"""Bad input never stops the node: malformed DICOM and fuzzed files meet defined outcomes.

The corpus (iqgate_testkit.bad_inputs) and the fuzzing (iqgate_testkit.soak.fuzzing) are the ones
the hardening campaign runs; here they run in-process, without the network.
"""

from __future__ import annotations

import os
import signal
import time
from io import BytesIO
from pathlib import Path

import pytest

from iqgate.errors import ImagingError
from iqgate.node.ingest.header import PARSE_ERRORS, instance_problem, read_header
from iqgate.node.pipeline import decode as decode_module
from iqgate.node.pipeline.decode import Decoder, DecoderCrashed, check_dimensions, decode_file
from iqgate_testkit.bad_inputs import Expect, corpus, write_file
from iqgate_testkit.dicom_factory import make_image, write_image
from iqgate_testkit.soak.fuzzing import attribute_outcomes, mutated_file_outcomes

CASES = corpus()


def scp_verdict(dataset: bytes, syntax: str) -> str | None:
    """The SCP's check of a data set: None when it would store it, else the reason."""
    try:
        return instance_problem(read_header(BytesIO(dataset), syntax))
    except PARSE_ERRORS as exc:
        return f"cannot parse: {exc}"


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.expect is Expect.REFUSED], ids=lambda c: c.name
)
def test_malformed_data_sets_are_refused_with_a_reason(case):
    if case.name == "uid-mismatch":  # needs the C-STORE request to compare with
        assert scp_verdict(case.dataset, case.transfer_syntax) is None
        return
    reason = scp_verdict(case.dataset, case.transfer_syntax)
    assert reason is not None and case.reason in reason


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.expect is Expect.FAILED], ids=lambda c: c.name
)
def test_storable_but_undecodable_images_fail_with_an_imaging_error(case, tmp_path):
    assert scp_verdict(case.dataset, case.transfer_syntax) is None
    with pytest.raises(ImagingError, match=case.reason.replace("(", r"\(")):
        decode_file(write_file(case, tmp_path))


def test_the_header_check_reads_no_pixel_data_but_catches_truncation(tmp_path):
    data = make_image(rows=64, columns=48)
    raw = BytesIO()
    data.save_as(raw, enforce_file_format=True)
    dataset = raw.getvalue()[raw.getvalue().index(b"\x08\x00\x16\x00") :]
    header = read_header(BytesIO(dataset), data.file_meta.TransferSyntaxUID)
    assert "PixelData" not in header.dataset
    assert header.pixel_length == header.pixel_sent == 64 * 48 * 2 and header.pixel_complete
    assert instance_problem(header) is None
    cut = read_header(BytesIO(dataset[:-10]), data.file_meta.TransferSyntaxUID)
    assert "truncated" in instance_problem(cut)


def test_declared_dimensions_are_guarded_before_decoding():
    ds = make_image(rows=8, columns=8)
    ds.Rows, ds.Columns = 65535, 65535
    with pytest.raises(ImagingError, match="exceeds IQGATE_DECODE_MAX_PIXELS"):
        check_dimensions(ds)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 64, 64, 4
    check_dimensions(ds, max_pixels=64 * 64 * 4)
    with pytest.raises(ImagingError, match="16384 pixels exceeds"):
        check_dimensions(ds, max_pixels=64 * 64 * 4 - 1)


def test_mutated_files_raise_only_imaging_errors():
    outcome = mutated_file_outcomes(examples=150, seed_value=1)
    assert outcome["unexpected"] == []
    assert outcome["imaging_error"] > 0 and outcome["decoded"] > 0


def test_random_image_attributes_raise_only_imaging_errors():
    outcome = attribute_outcomes(examples=150, seed_value=1)
    assert outcome["unexpected"] == []


class PanicException(BaseException):
    """Stands in for pyo3_runtime.PanicException (a Rust codec's panic)."""


def test_a_codec_panic_becomes_an_imaging_error(tmp_path, monkeypatch):
    def panic(ds):
        raise PanicException("index out of bounds: the len is 960 but the index is 960")

    monkeypatch.setattr(decode_module, "frames_from_dataset", panic)
    with pytest.raises(ImagingError, match="codec panicked"):
        decode_file(write_image(tmp_path / "x.dcm"))


def crash_on_marked_files(path: Path):
    """A decode function that kills its process for files named 'crash*' (a segfault)."""
    if Path(path).name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return decode_file(path)


def test_a_decoder_that_kills_its_process_fails_only_its_file(tmp_path):
    good = [write_image(tmp_path / f"good-{i}.dcm", seed=i) for i in range(3)]
    crash = write_image(tmp_path / "crash.dcm", seed=9)
    decoder = Decoder(1, decode=crash_on_marked_files)
    try:
        outcomes = decoder.decode_many([good[0], crash, good[1]])
        assert isinstance(outcomes[1], DecoderCrashed)
        assert "decoder process died" in str(outcomes[1])
        assert [o.frames.shape for o in (outcomes[0], outcomes[2])] == [(1, 96, 80)] * 2
        assert decoder.restarts >= 1
        again = decoder.decode_many([good[2]])
        assert again[0].frames.shape == (1, 96, 80)
    finally:
        decoder.close()


def hang_on_marked_files(path: Path):
    """A decode function that never returns for files named 'hang*' (a looping codec)."""
    if Path(path).name.startswith("hang"):
        time.sleep(600)
    return decode_file(path)


def test_a_decoder_that_hangs_is_ended_after_the_timeout_and_fails_only_its_file(tmp_path):
    good = [write_image(tmp_path / f"good-{i}.dcm", seed=i) for i in range(2)]
    hang = write_image(tmp_path / "hang.dcm", seed=9)
    decoder = Decoder(1, timeout_s=1.0, decode=hang_on_marked_files)
    try:
        started = time.monotonic()
        outcomes = decoder.decode_many([good[0], hang, good[1]])
        assert time.monotonic() - started < 60
        assert isinstance(outcomes[1], DecoderCrashed)
        assert "IQGATE_DECODE_TIMEOUT_S = 1 s" in str(outcomes[1])
        assert [o.frames.shape for o in (outcomes[0], outcomes[2])] == [(1, 96, 80)] * 2
        assert decoder.decode_many([good[1]])[0].frames.shape == (1, 96, 80)
    finally:
        decoder.close()
