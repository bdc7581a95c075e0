"""The ``iqgate`` command: ``serve``, ``assess``, ``route``, ``jobs`` and ``users``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from iqgate import __version__
from iqgate.config import Settings, SettingsError, load_settings
from iqgate.errors import IqgateError
from iqgate.node.store.states import JobState, JobVerdict


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, os.environ)


def _serve(args: argparse.Namespace) -> int:
    from iqgate.node.app import Node
    from iqgate.node.ops.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level)
    Node(settings).run_until_signal()
    return 0


def _dicom_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def _assess(args: argparse.Namespace) -> int:
    from iqgate.node.ingest.header import instance_info
    from iqgate.node.ops.logs import configure_logging
    from iqgate.node.ops.metrics import NodeMetrics
    from iqgate.node.pipeline.build import build_pipeline
    from iqgate.node.pipeline.worker import AssessmentWorker
    from iqgate.node.store.spool import Spool

    base = _settings(args)
    configure_logging(base.log_level)
    with tempfile.TemporaryDirectory(prefix="iqgate-assess-") as spool_dir:
        settings = base.model_copy(
            update={
                "spool_dir": Path(spool_dir),
                "results_dir": args.out,
                "pacs": [],
                "series_quiet_s": 0.0,
                "batch_wait_ms": 0.0,
                "forward_originals": False,
                "decode_processes": 0,
            }
        )
        spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
        skipped = 0
        for path in _dicom_files(args.inputs):
            try:
                ds = dcmread(path, stop_before_pixels=True)
                info = instance_info(ds, "OFFLINE")
            except (InvalidDicomError, AttributeError, OSError, EOFError) as exc:
                print(f"skipped {path}: not a DICOM image ({exc})", file=sys.stderr)
                skipped += 1
                continue
            spool.accept(path.read_bytes(), info)
        pipeline = build_pipeline(settings)
        worker = AssessmentWorker(settings, spool, pipeline, NodeMetrics(spool.query))
        while worker.run_once():
            pass
        worker.flush_quiet_series()
        pipeline.close()
        failed = spool.query.jobs([JobState.FAILED])
        for job in failed:
            print(f"failed {job.sop_instance_uid}: {job.reason}", file=sys.stderr)
        done = spool.query.jobs()
        verdicts = Counter(j.verdict for j in done)
        flagged, passed = verdicts[JobVerdict.FLAGGED], verdicts[JobVerdict.PASS]
        not_assessed = verdicts[JobVerdict.NOT_ASSESSED]
        print(
            f"{len(done)} images: {flagged} flagged, {passed} passed, {not_assessed} not "
            f"assessed, {len(failed)} failed, {skipped} skipped; results in {args.out}"
        )
        return 1 if failed else 0


def _route(args: argparse.Namespace) -> int:
    from iqgate.node.pipeline.routing import route_header
    from iqgate.packages import find_packages, read_card

    settings = _settings(args)
    cards = [read_card(directory) for directory in find_packages(settings.models_dir)]
    rules = {card.name: card.routing for card in cards}
    site = settings.site_routing
    if site is not None:
        rules = site.apply(rules)
    for path in _dicom_files(args.inputs):
        try:
            header = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError) as exc:
            print(f"{path}: skipped, not DICOM ({type(exc).__name__})")
            continue
        decision = route_header(rules, header)
        verdict = decision.model or f"not assessed ({decision.label})"
        print(f"{path}: {verdict}")
        if decision.excluded is not None:
            print(f"  {decision.reason}")
        for name, (rule, reason) in decision.refusals.items():
            print(f"  {name}: {rule.value}: {reason}")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from iqgate.node.store.spool import Spool

    settings = _settings(args)
    spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
    if args.action == "list":
        states = [JobState(s) for s in args.state] if args.state else None
        for job in spool.query.jobs(states):
            print(
                f"{job.id}\t{job.state.value}\t{job.verdict.value if job.verdict else '-'}\t{job.modality}\t"
                f"{job.sop_instance_uid}\t{job.reason or ''}"
            )
        for delivery in spool.query.dead_letters():
            print(
                f"dead letter\tjob {delivery.job_id}\t{delivery.kind}\t{delivery.destination}\t"
                f"{delivery.sop_instance_uid}"
            )
    elif args.action == "retry":
        print(f"requeued {spool.jobs.retry(args.job)} jobs and deliveries")
    else:
        states = [JobState(s) for s in args.state] if args.state else [JobState.DELIVERED]
        print(f"purged {spool.jobs.purge(args.older_than_s, states=states)} jobs")
    return 0


def _users(args: argparse.Namespace) -> int:
    from getpass import getpass

    from iqgate.node.console.users import Role, UsersFile

    users = UsersFile(_settings(args).console_users_file)
    if args.action == "list":
        for user in users.users():
            print(f"{user.name}\t{user.role.value}")
        return 0
    if not args.name:
        print(f"iqgate users {args.action}: give the user name", file=sys.stderr)
        return 2
    if args.action == "remove":
        users.remove(args.name)
        print(f"removed {args.name} from {users.path}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass(f"password for {args.name}: ")
        if getpass("again: ") != password:
            print("iqgate users add: the passwords differ", file=sys.stderr)
            return 2
    users.add(args.name, password, Role(args.role))
    print(f"added {args.name} ({args.role}) to {users.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``iqgate`` command."""
    parser = argparse.ArgumentParser(prog="iqgate", description="Explainable image-quality gate")
    parser.add_argument("--version", action="version", version=f"iqgate {__version__}")
    parser.add_argument(
        "--config", type=Path, help="YAML settings file (the environment overrides it)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the DICOM node").set_defaults(run=_serve)
    assess = commands.add_parser(
        "assess", help="assess DICOM files offline, writing the same results"
    )
    assess.add_argument("inputs", nargs="+", type=Path, help="DICOM files or folders")
    assess.add_argument("--out", type=Path, required=True, help="results folder")
    assess.set_defaults(run=_assess)
    route = commands.add_parser(
        "route", help="print which model would assess each file, and why not the others"
    )
    route.add_argument("inputs", nargs="+", type=Path, help="DICOM files or folders")
    route.set_defaults(run=_route)
    jobs = commands.add_parser("jobs", help="list, retry or purge spooled jobs")
    jobs.add_argument("action", choices=["list", "retry", "purge"])
    jobs.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in JobState],
    )
    jobs.add_argument("--job", type=int, help="retry only this job id")
    jobs.add_argument("--older-than-s", type=float, default=0.0, help="purge: minimum age")
    jobs.set_defaults(run=_jobs)
    users = commands.add_parser("users", help="add, remove or list the console's users")
    users.add_argument("action", choices=["add", "remove", "list"])
    users.add_argument("name", nargs="?", help="user name (add, remove)")
    users.add_argument(
        "--role", choices=["technologist", "admin"], default="technologist", help="add: role"
    )
    users.add_argument(
        "--password-stdin", action="store_true", help="add: read the password from stdin"
    )
    users.set_defaults(run=_users)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iqgate`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"iqgate: {exc}", file=sys.stderr)
        return 2
    except IqgateError as exc:
        print(f"iqgate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
