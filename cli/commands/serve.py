"""`policy serve`."""

from __future__ import annotations

import argparse
import sys

from runtime.admin.auth import AdminTokenError
from runtime.exceptions import ListenError
from runtime.ledger.base import LedgerError
from runtime.ledger.location import default_data_dir
from runtime.server import DEFAULT_GRACE_S, ServeOptions, run
from runtime.table import TableError
from runtime.workers import WorkersFailed, serve_workers

from ..errors import PolicyError
from ..exit_codes import EXIT_CANNOT_SERVE, EXIT_OK, EXIT_POLICY, EXIT_USAGE
from ..serve_settings import SettingError, apply_environment
from ..sources import ServeLoader, publish_source, source_files


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """The options of the flags given, else of the environment, else the defaults."""
    apply_environment(args)
    return ServeOptions(
        args.host or "127.0.0.1", 4000 if args.port is None else args.port, watch=not args.no_watch,
        access_log=not args.no_access_log, data_dir=args.data or default_data_dir(), ledger_url=args.ledger,
        workers=args.workers or 1, grace_period_s=DEFAULT_GRACE_S if args.grace_period is None else args.grace_period,
        admin_port=args.admin_port, admin_host=args.admin_host,
    )


def run_serve(args: argparse.Namespace) -> int:
    try:
        options = serve_options(args)
    except SettingError as exc:
        print(f"policy serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.source.exists():
        print(f"policy serve: error: {args.source}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        if options.workers > 1:
            serve_workers(args.source, publish_source, source_files, options)
        else:
            run(args.source, ServeLoader(), source_files, options)
    except ListenError as exc:
        print(f"policy serve: {exc}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    except PolicyError as exc:
        sys.stderr.write(exc.report)
        print(f"policy serve: {args.source} does not compile; not starting", file=sys.stderr)
        return EXIT_POLICY
    except (LedgerError, WorkersFailed) as exc:
        print(f"policy serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AdminTokenError as exc:
        print(f"policy serve: error: {exc}; not starting", file=sys.stderr)
        return EXIT_USAGE
    except TableError as exc:
        print(f"policy serve: error: {exc}", file=sys.stderr)
        return EXIT_POLICY
    except OSError as exc:
        print(f"policy serve: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
