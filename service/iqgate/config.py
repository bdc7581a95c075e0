"""Settings of the node: environment variables ``IQGATE_*`` and an optional YAML file.

YAML keys are the setting names without the prefix, in lower case; the environment
overrides the file. An unknown or invalid setting stops the start with a message that
names it. The frozen :class:`Settings` object is created once (by the CLI) and passed
down; nothing reads the environment at import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from iqgate.delivery_rules import DeliveryRule, DeliveryRules, RuleList
from iqgate.destinations import (
    TLS_PARAMETERS,
    DicomWebDestination,
    TlsFiles,
    WebhookDestination,
    query_of,
)
from iqgate.errors import IqgateError, RoutingFileError
from iqgate.routing_rules import SiteRouting

ENV_PREFIX = "IQGATE_"
AE_TITLE_PATTERN = re.compile(
    r"^[\x21-\x5b\x5d-\x7e]([\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$"
)


class SettingsError(IqgateError):
    """A setting is unknown or has an invalid value."""


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_split_commas)]


def _check_ae_title(title: str, setting: str) -> str:
    if not AE_TITLE_PATTERN.match(title):
        raise ValueError(
            f"{setting} {title!r} is not a valid AE title (1 to 16 printable ASCII characters, "
            "no backslash, no leading or trailing space)"
        )
    return title


@dataclass(frozen=True)
class DicomDestination:
    """A DICOM peer that takes results by C-STORE: ``dicom://AE@host:port``, or over TLS
    ``dicoms://AE@host:port?ca=...&cert=...&key=...`` (PEM files: the CA to trust, else
    the system's; the client certificate and key when the peer asks for one).

    ``dicom://`` may be left out (``AE@host:port``); ``str()`` gives the scheme-less form
    for plain DICOM and ``dicoms://AE@host:port`` for TLS: it names the destination in
    the delivery table and metrics.
    """

    scheme: ClassVar[str] = "dicom"
    tls_scheme: ClassVar[str] = "dicoms"
    ae_title: str
    host: str
    port: int
    tls: TlsFiles | None = None

    @classmethod
    def parse(cls, text: str) -> DicomDestination:
        """Parse ``dicom://AE@host:port``, ``AE@host:port`` or ``dicoms://AE@host:port?...``."""
        address = text.strip()
        tls = address.startswith(f"{cls.tls_scheme}://")
        address = address.removeprefix(f"{cls.tls_scheme if tls else cls.scheme}://")
        address, _, query = address.partition("?")
        match = re.fullmatch(r"([^@]+)@([^:@/]+):(\d+)", address)
        if not match:
            raise ValueError(
                f"PACS destination {text!r} must look like dicom://AE@host:port (or AE@host:port, "
                "or dicoms://AE@host:port?ca=...&cert=...&key=... for TLS)"
            )
        port = int(match.group(3))
        if not 0 < port < 65536:
            raise ValueError(f"PACS destination {text!r}: port {port} out of range")
        files = None
        if tls:
            files = TlsFiles.from_query(text, query_of(text, query, TLS_PARAMETERS))
        elif query:
            raise ValueError(f"PACS destination {text!r}: parameters need dicoms:// (TLS)")
        return cls(_check_ae_title(match.group(1), "PACS AE title"), match.group(2), port, files)

    @property
    def url(self) -> str:
        """The destination as a URL (without its TLS file parameters)."""
        return str(self) if self.tls else f"{self.scheme}://{self}"

    def __str__(self) -> str:
        address = f"{self.ae_title}@{self.host}:{self.port}"
        return f"{self.tls_scheme}://{address}" if self.tls else address


Destination = DicomDestination | DicomWebDestination | WebhookDestination
"""Where results can go: DICOM C-STORE (plain or TLS), DICOMweb STOW-RS, a webhook."""
DESTINATION_TYPES: dict[str, type[Destination]] = {
    DicomDestination.scheme: DicomDestination,
    DicomDestination.tls_scheme: DicomDestination,
    f"{DicomWebDestination.scheme}+http": DicomWebDestination,
    f"{DicomWebDestination.scheme}+https": DicomWebDestination,
    f"{WebhookDestination.scheme}+http": WebhookDestination,
    f"{WebhookDestination.scheme}+https": WebhookDestination,
}


def parse_destination(text: str) -> Destination:
    """A destination from its URL (no scheme: DICOM), by its scheme."""
    scheme, separator, _ = text.strip().partition("://")
    if not separator:
        return DicomDestination.parse(text)
    if scheme not in DESTINATION_TYPES:
        raise ValueError(
            f"PACS destination {text!r}: unknown scheme {scheme!r} "
            f"(supported: {', '.join(f'{s}://' for s in DESTINATION_TYPES)})"
        )
    return DESTINATION_TYPES[scheme].parse(text)


def resolve_rules(pacs: list[str], rules: list[DeliveryRule]) -> DeliveryRules:
    """The ``delivery_rules`` bound to the ``pacs`` destinations; a rule may name its
    destination as written there or by its name."""
    destinations = [parse_destination(p) for p in pacs]
    names = {text.strip(): str(d) for text, d in zip(pacs, destinations, strict=True)}
    names |= {str(d): str(d) for d in destinations}
    names |= {d.url: str(d) for d in destinations if isinstance(d, DicomDestination)}
    return DeliveryRules.resolve(
        [(str(d), d.scheme) for d in destinations],
        [
            rule.model_copy(
                update={"destination": names.get(rule.destination.strip(), rule.destination)}
            )
            for rule in rules
        ],
    )


@dataclass(frozen=True)
class AllowedCaller:
    """An allow-list entry: a calling AE title, optionally bound to one host."""

    ae_title: str
    host: str | None = None

    @classmethod
    def parse(cls, text: str) -> AllowedCaller:
        """Parse ``AE`` or ``AE@host``."""
        title, _, host = text.strip().partition("@")
        return cls(_check_ae_title(title, "allowed calling AE"), host or None)

    def allows(self, ae_title: str, host: str) -> bool:
        """Whether a caller with this title from this host matches the entry."""
        return ae_title.strip() == self.ae_title and (self.host is None or self.host == host)


class Settings(BaseModel):
    """Every setting of the node, with its default (names as in the README)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ae_title: str = "IQGATE"
    host: str = "0.0.0.0"
    port: int = Field(11112, gt=0, lt=65536)
    http_host: str = "0.0.0.0"
    http_port: int = Field(8080, ge=0, lt=65536)
    spool_dir: Path = Path("./var/spool")
    results_dir: Path = Path("./var/results")
    pacs: CommaList = Field(default_factory=list)
    delivery_rules: RuleList = Field(default_factory=list)
    allowed_calling_aes: CommaList = Field(default_factory=list)
    models_dir: Path = Path("./models")
    routing_file: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    overlays: Literal["flagged", "all", "none"] = "flagged"
    explain: Literal["flagged", "all"] = "flagged"
    classifier: Literal["onnx", "torch"] = "onnx"
    forward_originals: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # STOW-RS ingest (iqgate.node.ingest.stowrs): HTTPS with the TLS files above
    stow_port: int | None = Field(None, ge=0, lt=65536)
    """Port of the STOW-RS endpoint (POST /studies); None: no STOW-RS."""
    stow_host: str = "0.0.0.0"
    stow_tokens_file: Path | None = None
    """Lines ``NAME token``: bearer tokens STOW-RS callers may use, NAME their calling AE."""
    stow_max_request_bytes: int = Field(512 * 2**20, gt=0)
    # Spool and retention
    spool_max_bytes: int = Field(20 * 2**30, gt=0)
    spool_min_free_bytes: int = Field(512 * 2**20, ge=0)
    retention_s: float = Field(24 * 3600.0, ge=0)
    results_retention_s: float | None = Field(None, ge=0)
    """Seconds result files are kept under results_dir once every destination has them
    (None: kept until removed by hand)."""
    housekeeping_interval_s: float = Field(60.0, gt=0)
    # Associations
    max_associations: int = Field(16, gt=0)
    receive_processes: int = Field(2, ge=1)
    max_pdu_bytes: int = Field(0, ge=0)
    acse_timeout_s: float = Field(30.0, gt=0)
    dimse_timeout_s: float = Field(60.0, gt=0)
    network_timeout_s: float = Field(60.0, gt=0)
    # Workers
    batch_max: int = Field(16, gt=0)
    batch_wait_ms: float = Field(50.0, ge=0)
    decode_processes: int = Field(1, ge=0)
    decode_max_pixels: int = Field(2**28, gt=0)
    decode_timeout_s: float = Field(120.0, gt=0)
    torch_threads: int = Field(1, gt=0)
    lease_s: float = Field(300.0, gt=0)
    normgrad_variant: Literal["bias", "scaling", "conv1x1", "conv3x3"] = "conv1x1"
    normgrad_layers: Literal["single", "combined"] = "combined"
    precision: Literal["fp32", "bf16"] = "fp32"
    series_quiet_s: float = Field(10.0, ge=0)
    # Forwarding
    retry_limit: int = Field(10, ge=1)
    retry_base_s: float = Field(2.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    forward_timeout_s: float = Field(30.0, gt=0)
    # Logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Console: the technologist's web console (iqgate.node.console, docs/console.md)
    console_port: int | None = Field(None, ge=0, lt=65536)
    """HTTP(S) port of the console; None: no console."""
    console_host: str = "0.0.0.0"
    console_dir: Path = Path("./var/console")
    console_users_file: Path = Path("./var/console/users.json")
    console_session_secret: str | None = None
    console_session_s: float = Field(8 * 3600.0, gt=0)
    console_retention_s: float = Field(7 * 24 * 3600.0, ge=0)
    console_trusted_user_header: str | None = None
    console_trusted_proxies: CommaList = Field(default_factory=list)

    @model_validator(mode="after")
    def _trusted_header_needs_proxies(self) -> Settings:
        if self.console_trusted_user_header and not self.console_trusted_proxies:
            raise ValueError(
                f"console_trusted_user_header {self.console_trusted_user_header!r} needs "
                "console_trusted_proxies: the addresses of the proxies allowed to send it"
            )
        return self

    @field_validator("ae_title")
    @classmethod
    def _valid_ae_title(cls, value: str) -> str:
        return _check_ae_title(value, "ae_title")

    @field_validator("pacs")
    @classmethod
    def _valid_destinations(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_destination(entry)
        return value

    @field_validator("delivery_rules")
    @classmethod
    def _valid_delivery_rules(
        cls, value: list[DeliveryRule], info: ValidationInfo
    ) -> list[DeliveryRule]:
        resolve_rules(info.data.get("pacs", []), value)
        return value

    @field_validator("routing_file")
    @classmethod
    def _readable_routing_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                SiteRouting.load(value)
            except RoutingFileError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("allowed_calling_aes")
    @classmethod
    def _valid_callers(cls, value: list[str]) -> list[str]:
        for entry in value:
            AllowedCaller.parse(entry)
        return value

    @property
    def destinations(self) -> list[Destination]:
        """Parsed PACS destinations (empty: results are written as files only)."""
        return [parse_destination(p) for p in self.pacs]

    @property
    def rules(self) -> DeliveryRules:
        """The delivery rules bound to the destinations (a destination without a rule of
        its own gets its transport's default)."""
        return resolve_rules(self.pacs, self.delivery_rules)

    @property
    def allowed_callers(self) -> list[AllowedCaller]:
        """Parsed allow-list (empty: anyone may associate)."""
        return [AllowedCaller.parse(a) for a in self.allowed_calling_aes]

    @property
    def site_routing(self) -> SiteRouting | None:
        """The site's changes to the models' routing rules (None: the cards' rules)."""
        return None if self.routing_file is None else SiteRouting.load(self.routing_file)

    @property
    def tls_enabled(self) -> bool:
        """Whether DICOM TLS is configured."""
        return self.tls_cert is not None


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read settings file {str(path)!r}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SettingsError(f"settings file {str(path)!r} must hold a mapping of setting: value")
    return {str(k): v for k, v in loaded.items()}


def load_settings(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``config_file`` (YAML), overridden by ``IQGATE_*`` in ``environ``."""
    file_values = _read_yaml(Path(config_file)) if config_file else {}
    env_values = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in (environ or {}).items()
        if name.startswith(ENV_PREFIX)
    }
    origin = {k: f"{config_file} key {k!r}" for k in file_values} | {
        k: f"environment variable {ENV_PREFIX}{k.upper()}" for k in env_values
    }
    merged = file_values | env_values
    known = set(Settings.model_fields)
    unknown = sorted(set(merged) - known)
    if unknown:
        raise SettingsError(
            f"unknown setting {', '.join(origin[k] for k in unknown)}; "
            f"known settings: {', '.join(sorted(known))}"
        )
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "?"
            where = origin.get(key, key)
            if len(error["loc"]) > 1:
                where += " at " + ".".join(str(part) for part in error["loc"][1:])
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("IQGATE_TLS_CERT and IQGATE_TLS_KEY must be set together")
    return settings
