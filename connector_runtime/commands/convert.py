"""`connector-runtime convert [FILE]`: preview the Sekoia values of STIX indicators, one JSON line each.

Input formats, detected from the text: one JSON object (an indicator or a STIX bundle), a JSON array,
or JSON Lines (each line an indicator, a bundle or an array). JSON Lines are streamed, so a large
export or a pipe is converted as it arrives; objects other than indicators are ignored.
"""

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from connector_runtime.conversion import Conversion, convert_indicator


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
            '[{"comparison", "reason"}]}.'
        ),
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="input file (default: standard input)")
    parser.set_defaults(func=convert_command)
    return parser


def convert_command(args: argparse.Namespace) -> int:
    """Run `convert` for parsed arguments: FILE or standard input to standard output."""
    if args.file in (None, "-"):
        return run_convert(sys.stdin, sys.stdout)
    try:
        with open(args.file, encoding="utf-8") as handle:
            return run_convert(handle, sys.stdout)
    except OSError as exc:
        print(f"convert: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def run_convert(input: TextIO, output: TextIO, errors: TextIO | None = None) -> int:
    """Convert every indicator read from `input` to one JSON line on `output`; 0 on success.

    Unreadable input gives one line on `errors` (standard error by default) and 1. Lines already
    written for earlier JSON Lines records stay written.
    """
    try:
        for obj in _indicators(_documents(input)):
            output.write(_render(obj.get("id"), convert_indicator(obj)) + "\n")
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
            if member.get("type") == "indicator":
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


def _render(indicator_id: Any, conversion: Conversion) -> str:
    return json.dumps(
        {
            "id": indicator_id,
            "values": [{"value": v.value, "type": v.type} for v in conversion.values],
            "skipped": [{"comparison": s.comparison, "reason": s.reason} for s in conversion.skipped],
        }
    )
