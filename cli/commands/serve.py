"""`policy serve`."""

from __future__ import annotations

import argparse
import sys

from runtime.admin.auth import AdminTokenError
from runtime.exceptions import ListenError
from runtime.ledger.base import LedgerError
from runtime.ledger.location import default_data_dir
from runtime.server import ServeOptions, run
from runtime.table import TableError

from ..errors import PolicyError
from ..exit_codes import EXIT_CANNOT_SERVE, EXIT_OK, EXIT_POLICY, EXIT_USAGE
from ..sources import load_source, source_files


def run_serve(args: argparse.Namespace) -> int:
    if not args.source.exists():
        print(f"policy serve: error: {args.source}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = ServeOptions(
            args.host, args.port, watch=not args.no_watch, access_log=not args.no_access_log,
            data_dir=args.data or default_data_dir(), ledger_url=args.ledger, admin_port=args.admin_port,
            admin_host=args.admin_host,
        )
        run(args.source, load_source, source_files, options)
    except ListenError as exc:
        print(f"policy serve: {exc}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    except PolicyError as exc:
        sys.stderr.write(exc.report)
        print(f"policy serve: {args.source} does not compile; not starting", file=sys.stderr)
        return EXIT_POLICY
    except LedgerError as exc:
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
