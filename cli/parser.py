"""The `policy` command line's arguments: every command, its options and its --help."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .exit_codes import EXIT_USAGE
from .gatepost_source import RELEASE_REV, REPOSITORY_URL

DATA_DEFAULT = "$GATEPOST_DATA, else $XDG_STATE_HOME/gatepost, else ~/.local/state/gatepost"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="policy",
        description="Gatepost: compile, check and serve LLM gateway policy kept in git.",
        epilog="Exit codes: 0 clean, 1 policy errors (or warnings with --strict; failing policy tests), "
        "2 usage or I/O error, 3 `policy diff` found changes, 4 `policy serve` cannot listen on its address, "
        "130 interrupted, 141 its output was closed (e.g. piped into head).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    comp = sub.add_parser(
        "compile",
        help="validate a policy directory and write the routing table",
        description="Compile every policy file below DIR (*.yaml/*.yml, and *.gp in the DSL; *_test.yaml "
        "files and dot-folders are skipped) into a routing table artifact. "
        "Problems are reported together, sorted by file and line: every syntax and schema error in one run; "
        "the checks of meaning (references, routes, budgets) on each entity that passed its schema, and, "
        "while a file does not parse, only those that read one entity at a time.",
        epilog="Examples:\n  policy compile policies/ --check            # CI gate on pull requests\n"
        "  policy compile policies/ -o routing-table.json\n"
        "  policy compile policies/ --check --format github   # inline PR annotations",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("directory", type=Path, metavar="DIR", help="the policy repository (or a folder of it)")
    out = comp.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the artifact here ('-' for stdout)")
    out.add_argument("--check", action="store_true", help="validate only; write nothing")
    comp.add_argument(
        "--format", choices=("text", "json", "github", "sarif"), default="text",
        help="how to print diagnostics: text (default), json, github (workflow annotations), sarif (code scanning)"
    )
    comp.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    comp.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only, no summary")

    keys = sub.add_parser("keys", help="virtual key material", description="Virtual key material.")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser)
    keys_sub.required = True
    new = keys_sub.add_parser(
        "new",
        help="generate a virtual key and the policy lines for it",
        description="Generate a high-entropy virtual key. The key is printed once, to hand to its holder; "
        "only its sha256 and 12-character prefix go into the policy.",
    )
    new.add_argument("--id", default="vk-new", help="the virtual key id to show in the YAML snippet (letters, digits and . _ @ + : -, as the compiler requires)")

    serve = sub.add_parser(
        "serve",
        help="serve the proxy from a policy directory or a routing table",
        description="Serve OpenAI-shaped traffic (POST /v1/chat/completions, POST /v1/responses, GET /v1/models), "
        "Anthropic-shaped traffic (POST /v1/messages, POST /v1/messages/count_tokens) and Gemini-shaped traffic "
        "(POST /v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens) decided by the "
        "routing table, translating where a route's target speaks another protocol. A policy directory is compiled at start (the proxy refuses to start "
        "if it does not compile); an artifact is verified (schema and revision). The table is reloaded on "
        "SIGHUP and whenever the source changes; a broken one is refused and the last good one keeps serving.",
        epilog="Endpoints besides the API: GET /healthz, GET /readyz, GET /metrics (Prometheus). "
        "Exit codes: 1 the policy does not compile, 2 usage or I/O error (an unreadable source or ledger), "
        "4 cannot listen on HOST:PORT (in use, not permitted, not this host's address).",
    )
    serve.add_argument("source", type=Path, metavar="DIR_OR_TABLE", help="a policy directory or an artifact")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4000, help="port to listen on (default 4000)")
    serve.add_argument("--no-watch", action="store_true", help="reload on SIGHUP only, not on file changes")
    serve.add_argument("--no-access-log", action="store_true", help="do not write the JSON access log")
    serve.add_argument(
        "--data", type=Path, metavar="DIR",
        help=f"directory of the SQLite spend ledger (default {DATA_DEFAULT}; keep it out of the policy "
        "repository, whose files are the only ones watched)",
    )
    serve.add_argument(
        "--ledger", metavar="URL", default=os.environ.get("GATEPOST_LEDGER"),
        help="redis://host:port/db to share one ledger between replicas (default: SQLite in --data)",
    )
    serve.add_argument(
        "--admin-port", type=int, metavar="PORT",
        help="serve the read-only admin API and dashboard (/admin/) on this port, behind gateway.admin.token "
        "(default: not served; never on --port)",
    )
    serve.add_argument("--admin-host", default="127.0.0.1", help="address the admin API listens on (default 127.0.0.1)")

    explain = sub.add_parser(
        "explain",
        help="show the route the proxy would take for a key and a model",
        description="The decision the proxy makes for (virtual key, model, surface), step by step: "
        "authentication, alias resolution, the allow-list, the ordered targets and fallback conditions, "
        "the cache policy, the budgets and the rate limits that apply, each with the policy line behind it.",
        epilog="Examples:\n  policy explain --vk vk-alice-codex --model gpt-4o\n"
        "  policy explain policies/ --key-prefix gp-7Hq2xK9a --model o3 --surface chat",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("source", type=Path, nargs="?", default=Path("."), metavar="DIR_OR_TABLE",
                         help="a policy directory or an artifact (default: the current directory)")
    who = explain.add_mutually_exclusive_group(required=True)
    who.add_argument("--vk", help="the virtual key id")
    who.add_argument("--key-prefix", help="the key's first characters, as a support ticket quotes them")
    explain.add_argument("--model", required=True, help="the model name the client sends")
    explain.add_argument("--surface", choices=("chat", "responses", "messages", "gemini"), default="responses",
                         help="the API the client calls (default responses, as Codex does)")
    explain.add_argument("--format", choices=("text", "json"), default="text")

    test = sub.add_parser(
        "test",
        help="run the policy's *_test.yaml cases through the proxy's decision",
        description="Each case names a key (vk or key_prefix), a model and a surface, and what must "
        "happen (allow or deny with a code, the first target, the budgets). Cases run through the same "
        "decision function as the proxy. Exit 0 when all pass, 1 when any fails or no case is found, "
        "2 on usage errors or a malformed test file.",
        epilog="Test files are every *_test.yaml/*_test.yml below DIR (schemas/policy-test.schema.json):\n"
        "  tests:\n"
        "    - name: o3 is off the Codex allow-list\n"
        "      vk: vk-alice-codex          # or key_prefix: gp-nFv8tCho\n"
        "      model: o3\n"
        "      surface: responses          # chat | responses (default) | messages | gemini\n"
        "      at: 2027-06-30T00:00:00Z    # optional: when the request happens (expiry); default now\n"
        "      expect: {decision: deny, status: 403, code: model_not_allowed}\n"
        "expect fields (only those given are compared):\n"
        "  decision      allow | deny (required)\n"
        "  status, code  deny: the HTTP status and error code (401 invalid_api_key, 403 model_not_allowed, ...)\n"
        "  model         allow: the registered model the requested name resolves to\n"
        "  first_target  allow: provider/model tried first\n"
        "  targets       allow: every target, provider/model, in order\n"
        "  budgets       allow: the budget instances that apply\n"
        "  rate_limits   allow: the rate limit instances a request for the model counts against\n"
        "  cache         allow: respect | disable | force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("directory", type=Path, nargs="?", default=Path("."), metavar="DIR",
                      help="the policy directory; its *_test.yaml files hold the cases (default: .)")
    test.add_argument("--format", choices=("text", "json"), default="text")

    diff = sub.add_parser(
        "diff",
        help="what a policy change grants, takes away and costs",
        description="A semantic diff of two routing tables, the way a plan shows infrastructure changes: keys "
        "added, removed or revoked; models granted or withdrawn; alias targets and fallback chains moved; cache "
        "modes; budgets and thresholds; rate limits; providers. Each change is classed (widens access, raises spend, weakens "
        "resilience, narrows, neutral). BASE and HEAD are each a policy directory, an artifact, or a git revision "
        "(compiled from git objects, the working tree untouched).",
        epilog="Exit codes: 0 no change, 3 changes, 1 a side does not compile, 2 usage or I/O error.\n"
        "Examples:\n  policy diff main HEAD --dir policies/ --format markdown   # a PR comment\n"
        "  policy diff build/old.json build/new.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("base", metavar="BASE",
                      help="the policy before the change: a policy directory, an artifact (JSON), or a git revision")
    diff.add_argument("head", metavar="HEAD",
                      help="the policy after the change: a policy directory, an artifact (JSON), or a git revision")
    diff.add_argument("--dir", type=Path, default=Path("."),
                      help="the policy directory inside the repository, for git revisions (default: .)")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text")

    fmt = sub.add_parser(
        "fmt",
        help="rewrite policy YAML into the canonical layout, comments kept",
        description="Sections in the language's order, each entity's fields in a fixed order, two-space "
        "indentation; comments, entity order and scalar spelling kept. The result is checked to decide "
        "exactly as before. DSL files are left as written.",
    )
    fmt.add_argument("directory", type=Path, nargs="?", default=Path("."), metavar="DIR",
                     help="the policy directory whose *.yaml/*.yml files are formatted (default: .)")
    fmt.add_argument("--check", action="store_true", help="write nothing; show the diff and exit 1 if any file would change")

    init = sub.add_parser(
        "init",
        help="scaffold a policy repository",
        description="Write a starter policy repository: a model catalog with list prices, the known good setup "
        "for Codex as a profile, one personal key (printed once), budgets, policy tests, a CI workflow "
        "(check, test, diff as a PR comment) and a pre-commit config.",
    )
    init.add_argument("directory", type=Path, metavar="DIR", help="a new or empty directory (dot-entries such as .git are fine; no file is overwritten)")
    init.add_argument("--principal", default="you@example.com", help="the engineer the starter key belongs to")
    init.add_argument("--gatepost-url", metavar="URL", default=REPOSITORY_URL,
                      help="the git repository the CI workflow (pip install \"gatepost @ git+URL@REV\") and the "
                      f"pre-commit hooks install Gatepost from; a fork or internal mirror you trust (default {REPOSITORY_URL})")
    init.add_argument("--gatepost-rev", metavar="REV", default=RELEASE_REV,
                      help=f"the tag or commit of that repository to install, the same for CI and pre-commit (default {RELEASE_REV})")

    budgets = sub.add_parser(
        "budgets",
        help="show spend against each budget instance from the ledger",
        description="Each budget instance's window, spend (settled, and reserved by requests in flight), "
        "limit and state (ok, warn, blocked), read from the ledger `policy serve` writes. Given the policy "
        "(or its compiled table), every instance it defines is listed in its current window with the "
        "limits the policy sets now, including instances with no spend yet; without it, the instances the "
        "ledger has seen, with the limits they last had. The ledger is only read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  policy budgets policies/ --data /var/lib/gatepost\n"
        "  policy budgets routing-table.json --ledger redis://10.0.0.5:6379/0 --format json\n"
        "  policy budgets --data /var/lib/gatepost --all        # every window the ledger holds\n\n"
        "exit status: 0 shown, 2 the ledger or the policy could not be read",
    )
    budgets.add_argument("source", type=Path, nargs="?", metavar="DIR_OR_TABLE",
                         help="the policy directory or compiled table the proxy serves (optional)")
    budgets.add_argument("--data", type=Path, metavar="DIR",
                         help=f"the SQLite ledger's directory (default {DATA_DEFAULT}, as for `policy serve`)")
    budgets.add_argument("--ledger", metavar="URL", default=os.environ.get("GATEPOST_LEDGER"),
                         help="redis://host:port/db instead of SQLite")
    budgets.add_argument("--all", action="store_true", help="every window, not only the latest of each instance")
    budgets.add_argument("--format", choices=("text", "json"), default="text")

    schema = sub.add_parser(
        "schema",
        help="regenerate the JSON Schemas from the models",
        description="Write policy.schema.json, policy-test.schema.json and routing-table.schema.json: into "
        ".schemas/ in a policy repository made by `policy init` (where its files point editors), else into schemas/.",
    )
    schema.add_argument("--out", type=Path, default=None,
                        help="directory to write to (default .schemas/ when it exists here, else schemas/)")
    schema.add_argument("--check", action="store_true", help="exit 1 if the files on disk are stale")
    return parser
