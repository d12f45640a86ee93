"""`connector-runtime convert [FILE]`: preview the Sekoia values of STIX indicators, one JSON line each.

Input formats, detected from the text: one JSON object (an indicator or a STIX bundle), a JSON array,
or JSON Lines (each line an indicator, a bundle or an array). JSON Lines are streamed, so a large
export or a pipe is converted as it arrives; objects other than indicators are ignored, except
marking definitions, which name the markings of the indicators that follow them.

Each line also shows the sharing guardrail's decision (``sharing``) under the policy of the
``SEKOIA_INTEL_MARKINGS_*`` variables, or of the command's options. The command never contacts
OpenCTI: a marking id that is neither built in nor defined in the input counts as unresolved.
"""

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from connector_runtime.conversion import Conversion, convert_indicator
from connector_runtime.guardrail import Decision, Guardrail, MarkingPolicy
from connector_runtime.guardrail.policy import DEFAULT_MAX_TLP, parse_list


class InputError(ValueError):
    """The input is not what the command accepts; the message names the line and the problem."""


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `convert` sub-command on an argparse sub-parsers object; sets `func`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="print the Sekoia values each STIX indicator converts to",
        description=(
            "Read STIX indicators (JSON object, JSON array, STIX bundle or JSON Lines) and print one "
            'JSON line per indicator: {"id", "values": [{"value", "type"}], "skipped": '
            '[{"comparison", "reason"}], "sharing": {"allowed", "markings", ...}}. The sharing policy '
            "comes from the SEKOIA_INTEL_MARKINGS_* variables unless the options below are given."
        ),
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="input file (default: standard input)")
    parser.add_argument("--max-tlp", metavar="TLP", help="highest TLP that may leave (TLP:AMBER+STRICT)")
    parser.add_argument("--max-pap", metavar="PAP", help="highest PAP that may leave (default: no limit)")
    parser.add_argument(
        "--allow", action="append", default=[], metavar="MARKING", help="marking name or id always allowed"
    )
    parser.add_argument(
        "--refuse", action="append", default=[], metavar="MARKING", help="marking name or id always refused"
    )
    parser.add_argument("--unmarked", choices=["push", "skip"], help="fate of unmarked indicators")
    parser.set_defaults(func=convert_command)
    return parser


def policy_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> MarkingPolicy:
    """The sharing policy: the command's options over the ``SEKOIA_INTEL_MARKINGS_*`` variables.
    Raises ValueError with one line naming the option or variable at fault."""
    env = os.environ if environ is None else environ
    sources = {
        "max_tlp": (args.max_tlp, "--max-tlp", "SEKOIA_INTEL_MARKINGS_MAX_TLP"),
        "max_pap": (args.max_pap, "--max-pap", "SEKOIA_INTEL_MARKINGS_MAX_PAP"),
        "unmarked": (args.unmarked, "--unmarked", "SEKOIA_INTEL_MARKINGS_UNMARKED"),
    }
    chosen: dict[str, Any] = {}
    for field, (option, option_name, variable) in sources.items():
        value = option or env.get(variable, "").strip() or None
        if value is not None:
            chosen[field] = (value, option_name if option else variable)
    lists: dict[str, list[str]] = {}
    for field, extra, variable in (
        ("allowed", args.allow, "SEKOIA_INTEL_MARKINGS_ALLOWED"),
        ("refused", args.refuse, "SEKOIA_INTEL_MARKINGS_REFUSED"),
    ):
        try:
            parsed = parse_list(env.get(variable, ""))
        except ValueError as exc:
            raise ValueError(f"{variable} {exc}") from None
        lists[field] = [*(parsed if isinstance(parsed, list) else []), *extra]
    for field, (value, source) in chosen.items():
        try:
            MarkingPolicy.build(**{field: value})
        except ValueError as exc:
            raise ValueError(f"{source} {exc}") from None
    return MarkingPolicy.build(
        max_tlp=chosen.get("max_tlp", (DEFAULT_MAX_TLP,))[0],
        max_pap=chosen.get("max_pap", (None,))[0],
        allowed=lists["allowed"],
        refused=lists["refused"],
        unmarked=chosen.get("unmarked", ("push",))[0],
    )


def convert_command(args: argparse.Namespace) -> int:
    """Run `convert` for parsed arguments: FILE or standard input to standard output."""
    try:
        policy = policy_from(args)
    except ValueError as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 2
    if args.file in (None, "-"):
        return run_convert(sys.stdin, sys.stdout, policy=policy)
    try:
        with open(args.file, encoding="utf-8") as handle:
            return run_convert(handle, sys.stdout, policy=policy)
    except OSError as exc:
        print(f"convert: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def run_convert(
    input: TextIO, output: TextIO, errors: TextIO | None = None, policy: MarkingPolicy | None = None
) -> int:
    """Convert every indicator read from `input` to one JSON line on `output`; 0 on success.

    Unreadable input gives one line on `errors` (standard error by default) and 1. Lines already
    written for earlier JSON Lines records stay written. `policy` is the sharing policy (default:
    the runtime's default policy).
    """
    guardrail = Guardrail(policy or MarkingPolicy())
    try:
        for obj in _indicators(_documents(input)):
            if obj.get("type") == "marking-definition":
                guardrail.resolver.learn(obj)
                continue
            output.write(_render(obj.get("id"), convert_indicator(obj), guardrail.check(obj)) + "\n")
    except InputError as exc:
        print(f"convert: {exc}", file=errors or sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(f"convert: input is not UTF-8 text ({exc.reason})", file=errors or sys.stderr)
        return 1
    return 0


def _documents(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed JSON value) for each document of the input."""
    iterator = iter(lines)
    head: list[str] = []
    for line in iterator:
        head.append(line.lstrip("\ufeff") if not head else line)
        if head[-1].strip():
            break
    if not head or not head[-1].strip():
        return  # empty input: nothing to convert
    first_line = len(head)
    try:
        # A first line that is a complete JSON value means JSON Lines (a one-line document is the
        # same thing as a one-record JSON Lines file).
        yield first_line, _loads(head[-1])
    except _PartialDocument:
        yield first_line, _parse_whole("".join(head) + "".join(iterator))
        return
    for number, line in enumerate(iterator, start=first_line + 1):
        if line.strip():
            try:
                yield number, _loads(line)
            except _PartialDocument as exc:
                raise InputError(f"line {number}: invalid JSON Lines record: {exc}") from None


class _PartialDocument(ValueError):
    pass


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _PartialDocument(f"{exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _PartialDocument("nested too deeply") from None


def _parse_whole(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply") from None


def _indicators(documents: Iterable[tuple[int, Any]]) -> Iterator[dict[str, Any]]:
    """Flatten bundles and arrays; keep indicators; reject values that are not STIX objects."""
    for number, document in documents:
        if isinstance(document, dict) and document.get("type") == "bundle":
            members = document.get("objects", [])
        elif isinstance(document, list):
            members = document
        else:
            members = [document]
        if not isinstance(members, list):
            raise InputError(f"line {number}: bundle 'objects' is not an array")
        for member in members:
            if not isinstance(member, dict):
                raise InputError(f"line {number}: expected a STIX object, got {_json_kind(member)}")
            if member.get("type") in ("indicator", "marking-definition"):
                yield member


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _render(indicator_id: Any, conversion: Conversion, decision: Decision) -> str:
    return json.dumps(
        {
            "id": indicator_id,
            "values": [{"value": v.value, "type": v.type} for v in conversion.values],
            "skipped": [{"comparison": s.comparison, "reason": s.reason} for s in conversion.skipped],
            "sharing": decision.as_dict(),
        }
    )
