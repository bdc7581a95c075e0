"""Routing rules: what a card accepts, why it refuses, and a site's changes to it."""

from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from iqgate.config import SettingsError, load_settings
from iqgate.data.phantoms import generate, write_dicom
from iqgate.data.phantoms.off_target import OffTarget
from iqgate.errors import RoutingFileError
from iqgate.routing_rules import CARDIAC_FOUR_CHAMBER_MR as LVOT
from iqgate.routing_rules import CHEST_RADIOGRAPHS as CHEST
from iqgate.routing_rules import HeaderFacts, Routing, Rule, SiteRouting, decide_route


def header(**attributes: object) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def rule_failed(routing: Routing, ds: Dataset) -> Rule | None:
    mismatch = routing.mismatch(HeaderFacts.from_dataset(ds))
    return None if mismatch is None else mismatch[0]


def test_a_chest_radiograph_is_accepted_by_body_part_or_by_its_description():
    assert rule_failed(CHEST, header(Modality="DX", BodyPartExamined="CHEST")) is None
    assert rule_failed(CHEST, header(Modality="CR", SeriesDescription="Thorax pa")) is None
    region = Dataset()
    region.CodeMeaning = "Chest"
    assert (
        rule_failed(CHEST, header(Modality="DX", AnatomicRegionSequence=Sequence([region]))) is None
    )


def test_other_radiographs_are_refused_with_the_rule_that_failed():
    knee = header(Modality="DX", BodyPartExamined="KNEE", SeriesDescription="chest")
    assert rule_failed(CHEST, knee) is Rule.BODY_PART
    reason = CHEST.mismatch(HeaderFacts.from_dataset(knee))[1]
    assert "KNEE" in reason and "CHEST" in reason
    assert (
        rule_failed(CHEST, header(Modality="DX", SeriesDescription="Hand 2 views"))
        is Rule.BODY_PART
    )
    assert rule_failed(CHEST, header(Modality="MR", BodyPartExamined="CHEST")) is Rule.MODALITY


@pytest.mark.parametrize(
    "description", ["4CH cine", "cine 4 ch", "4-chamber SSFP", "SSFP_HLA_cine", "Four chamber"]
)
def test_cardiac_four_chamber_views_are_accepted_under_site_naming(description):
    assert rule_failed(LVOT, header(Modality="MR", SeriesDescription=description)) is None
    assert rule_failed(LVOT, header(Modality="MR", ProtocolName=description)) is None


@pytest.mark.parametrize("description", ["t2_tse_tra", "sa_cine_14ch", "SA stack", "2CH cine"])
def test_brain_mr_and_other_cardiac_views_are_not_lvot_images(description):
    brain = header(Modality="MR", SeriesDescription=description, BodyPartExamined="HEAD")
    assert rule_failed(LVOT, brain) is Rule.DESCRIPTION


@pytest.mark.parametrize(
    "attributes",
    [
        {"ImageType": ["DERIVED", "PRIMARY"]},
        {"ImageType": ["ORIGINAL", "SECONDARY"]},
        {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},
    ],
)
def test_derived_and_secondary_images_are_refused_unless_the_card_accepts_them(attributes):
    ds = header(Modality="DX", BodyPartExamined="CHEST", **attributes)
    assert rule_failed(CHEST, ds) is Rule.DERIVED
    accepting = CHEST.model_copy(update={"accept_derived": True})
    assert rule_failed(accepting, ds) is None


def test_cards_written_with_series_description_patterns_still_load():
    routing = Routing.model_validate({"series_description_patterns": ["4CH"]})
    assert routing.description_patterns == ["4CH"]


def test_a_site_file_extends_and_narrows_a_models_rules(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text(
        "models:\n"
        "  cmr-lvot:\n"
        "    extend: {description_patterns: ['VLA_HLA_combo', 'vierkammer']}\n"
        "  cxr-foreign-object:\n"
        "    replace: {modalities: [DX]}\n"
    )
    site = SiteRouting.load(path)
    lvot = site.routing_for("cmr-lvot", LVOT)
    assert lvot.description_patterns[-1] == "vierkammer"
    assert rule_failed(lvot, header(Modality="MR", SeriesDescription="Vierkammer cine")) is None
    chest = site.routing_for("cxr-foreign-object", CHEST)
    assert rule_failed(chest, header(Modality="CR", BodyPartExamined="CHEST")) is Rule.MODALITY
    assert site.routing_for("other", CHEST) is CHEST


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {m: {replace: {colour: [x]}}}", "unknown routing rules"),
        ("models: {m: {extend: {accept_derived: [x]}}}", "needs a list rule"),
        ("models: {m: {extend: {description_patterns: ['(']}}}", "not a regular expression"),
        ("models: {m: {remove: {}}}", "remove"),
        ("models: [", "routing file"),
    ],
)
def test_a_bad_site_file_is_refused_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    with pytest.raises(RoutingFileError, match=message):
        SiteRouting.load(path).routing_for("m", LVOT)


@pytest.fixture(scope="module")
def phantom_headers(tmp_path_factory) -> dict[str, list[Dataset]]:
    """Phantom files of both tasks, as acquired and as each off-target variant."""
    folder = tmp_path_factory.mktemp("phantoms")
    cxr, cmr = generate("cxr", 3, seed=4), generate("cmr", 4, seed=4)
    syntax = [ExplicitVRLittleEndian]

    def headers(samples, name: str, kind: OffTarget | None = None) -> list[Dataset]:
        paths = write_dicom(samples, folder / name, transfer_syntaxes=syntax, off_target=kind)
        return [dcmread(p, stop_before_pixels=True) for p in paths]

    return {
        "cxr": headers(cxr, "cxr"),
        "cmr": headers(cmr, "cmr"),
        "knee": headers(cxr, "knee", OffTarget.KNEE_RADIOGRAPH),
        "brain": headers(cmr, "brain", OffTarget.BRAIN_MR),
        "derived": headers(cxr, "derived", OffTarget.DERIVED),
    }


@pytest.mark.parametrize(
    ("kind", "chest_rule", "lvot_rule"),
    [
        ("cxr", None, Rule.MODALITY),
        ("cmr", Rule.MODALITY, None),
        ("knee", Rule.BODY_PART, Rule.MODALITY),
        ("brain", Rule.MODALITY, Rule.DESCRIPTION),
        ("derived", Rule.DERIVED, Rule.MODALITY),
    ],
)
def test_phantom_headers_route_as_a_modalitys_would(phantom_headers, kind, chest_rule, lvot_rule):
    for ds in phantom_headers[kind]:
        assert rule_failed(CHEST, ds) is chest_rule
        assert rule_failed(LVOT, ds) is lvot_rule


def test_phantoms_name_their_series_as_sites_do(phantom_headers):
    descriptions = {ds.SeriesDescription for ds in phantom_headers["cmr"]}
    assert len(descriptions) == 4 and all(ds.ProtocolName for ds in phantom_headers["cmr"])
    assert {ds.BodyPartExamined for ds in phantom_headers["cxr"]} == {"CHEST"}
    assert {ds.ViewPosition for ds in phantom_headers["cxr"]} == {"PA"}


def test_the_route_is_the_first_model_that_applies_else_every_refusal():
    rules = {"cxr-foreign-object": CHEST, "cmr-lvot": LVOT}
    chest = HeaderFacts.from_dataset(header(Modality="DX", BodyPartExamined="CHEST"))
    assert decide_route(rules, chest).model == "cxr-foreign-object"
    knee = decide_route(
        rules, HeaderFacts.from_dataset(header(Modality="DX", BodyPartExamined="KNEE"))
    )
    assert knee.model is None and list(knee.refusals) == ["cxr-foreign-object", "cmr-lvot"]
    assert knee.label == "no model applies: body_part"
    assert knee.reason.startswith("cxr-foreign-object: body part KNEE not in ['CHEST']; cmr-lvot:")
    assert decide_route({}, chest).reason == "no model packages loaded"
    both = decide_route({"a": CHEST, "b": CHEST, "cmr-lvot": LVOT}, chest)
    assert both.model == "a" and list(both.refusals) == ["cmr-lvot"] and both.reason == ""


def test_a_site_file_naming_a_model_that_is_not_loaded_is_refused(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("models: {cmr-lvt: {extend: {description_patterns: [x]}}}\n")
    with pytest.raises(RoutingFileError, match=r"not loaded: \['cmr-lvt'\]"):
        SiteRouting.load(path).apply({"cmr-lvot": LVOT})


def test_a_routing_file_that_cannot_be_read_stops_the_settings(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("models: {cmr-lvot: {extend: {description_patterns: ['[']}}}\n")
    with pytest.raises(SettingsError, match="routing_file"):
        load_settings(environ={"IQGATE_ROUTING_FILE": str(path)})
    with pytest.raises(SettingsError, match="routing_file"):
        load_settings(environ={"IQGATE_ROUTING_FILE": str(tmp_path / "missing.yaml")})
    path.write_text("models: {cmr-lvot: {extend: {description_patterns: [vierkammer]}}}\n")
    settings = load_settings(environ={"IQGATE_ROUTING_FILE": str(path)})
    assert (
        settings.site_routing.routing_for("cmr-lvot", LVOT).description_patterns[-1] == "vierkammer"
    )
