"""`connector-runtime convert`: every input format, error reporting, argparse wiring."""

import argparse
import io
import json
from pathlib import Path

import pytest

from connector_runtime.commands.convert import add_convert_parser, run_convert

# The copy kept in the repository (byte-identical to the shared data set), so the tests travel with it.
DATA = Path(__file__).resolve().parents[2] / "testbed" / "data" / "sekoia-apt31-indicators.jsonl"


def indicator(number: int, pattern: str = "[ipv4-addr:value = '1.2.3.4']") -> dict[str, object]:
    return {"type": "indicator", "id": f"indicator--{number}", "pattern_type": "stix", "pattern": pattern}


def run(text: str) -> tuple[int, list[dict[str, object]], str]:
    output, errors = io.StringIO(), io.StringIO()
    code = run_convert(io.StringIO(text), output, errors)
    return code, [json.loads(line) for line in output.getvalue().splitlines()], errors.getvalue()


EXPECTED_ONE = {
    "id": "indicator--1",
    "values": [{"value": "1.2.3.4", "type": "ipv4-addr.value"}],
    "skipped": [],
    "sharing": {"allowed": True, "markings": []},
}


def test_single_json_object() -> None:
    assert run(json.dumps(indicator(1))) == (0, [EXPECTED_ONE], "")


def test_pretty_printed_json_object() -> None:
    assert run(json.dumps(indicator(1), indent=2)) == (0, [EXPECTED_ONE], "")


def test_json_array() -> None:
    code, lines, _ = run(json.dumps([indicator(1), indicator(2, "[url:value = 'http://a/']")], indent=1))
    assert code == 0
    assert [line["id"] for line in lines] == ["indicator--1", "indicator--2"]
    assert lines[1]["values"] == [{"value": "http://a/", "type": "url.value"}]


def test_bundle_ignores_other_objects() -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [{"type": "malware", "id": "malware--1"}, indicator(1), {"type": "relationship"}],
    }
    assert run(json.dumps(bundle, indent=2)) == (0, [EXPECTED_ONE], "")


def test_json_lines_with_blank_lines_and_bom() -> None:
    text = "\ufeff\n" + json.dumps(indicator(1)) + "\n\n" + json.dumps(indicator(2)) + "\n"
    code, lines, errors = run(text)
    assert (code, errors) == (0, "")
    assert [line["id"] for line in lines] == ["indicator--1", "indicator--2"]


def test_json_lines_may_mix_bundles_and_ignore_non_indicators() -> None:
    text = "\n".join(
        json.dumps(doc)
        for doc in [{"type": "bundle", "objects": [indicator(1)]}, {"type": "relationship"}, indicator(2)]
    )
    code, lines, _ = run(text)
    assert code == 0
    assert [line["id"] for line in lines] == ["indicator--1", "indicator--2"]


def test_skipped_comparisons_are_reported() -> None:
    pattern = "[file:size = 10 OR file:hashes.MD5 = 'ABCDEF0123456789ABCDEF0123456789']"
    code, lines, _ = run(json.dumps(indicator(1, pattern)))
    assert code == 0
    assert lines == [
        {
            "id": "indicator--1",
            "values": [{"value": "abcdef0123456789abcdef0123456789", "type": "file.hashes"}],
            "skipped": [{"comparison": "file:size = 10", "reason": "unsupported-property"}],
            "sharing": {"allowed": True, "markings": []},
        }
    ]


def test_real_data_file_gives_one_line_per_indicator_in_order() -> None:
    with DATA.open(encoding="utf-8") as handle:
        output = io.StringIO()
        assert run_convert(handle, output, io.StringIO()) == 0
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    source_ids = [json.loads(line)["id"] for line in DATA.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == source_ids
    assert len(lines) == 104
    assert sum(len(line["values"]) for line in lines) == 53 + 43 + 11
    yara = [
        line for line in lines if line["skipped"] == [{"comparison": "yara", "reason": "not-stix-pattern"}]
    ]
    assert len(yara) == 2


def test_empty_input_prints_nothing() -> None:
    assert run("") == (0, [], "")
    assert run("\n  \n") == (0, [], "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{\n  "type": "indicator",\n  "id": \n}',
            "convert: line 4: invalid JSON: Expecting value (column 1)\n",
        ),
        (
            "[\n" + json.dumps(indicator(1)) + ",\n",
            "convert: line 3: invalid JSON: Expecting value (column 1)\n",
        ),
        ("not json", "convert: line 1: invalid JSON: Expecting value (column 1)\n"),
        ("5", "convert: line 1: expected a STIX object, got a number\n"),
        ('["a"]', "convert: line 1: expected a STIX object, got a string\n"),
        ('{"type": "bundle", "objects": {}}', "convert: line 1: bundle 'objects' is not an array\n"),
        ("[" * 100000, "convert: invalid JSON: nested too deeply\n"),
    ],
)
def test_unparseable_documents(text: str, message: str) -> None:
    assert run(text) == (1, [], message)


def test_bad_json_lines_record_names_its_line_after_earlier_output() -> None:
    text = json.dumps(indicator(1)) + "\n\n" + '{"type": "indicator", oops}\n' + json.dumps(indicator(2))
    code, lines, errors = run(text)
    assert code == 1
    assert lines == [EXPECTED_ONE]
    assert errors.startswith("convert: line 3: invalid JSON Lines record: ")
    assert errors.count("\n") == 1


def convert_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="connector-runtime")
    add_convert_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_reads_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "objects": [indicator(1)]}), encoding="utf-8")
    assert convert_cli(["convert", str(path)]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [EXPECTED_ONE]
    assert captured.err == ""


def test_cli_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(indicator(1)) + "\n"))
    assert convert_cli(["convert"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [EXPECTED_ONE]


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert convert_cli(["convert", str(tmp_path / "absent.json")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"convert: cannot read {tmp_path / 'absent.json'}: No such file or directory\n"


def test_cli_non_utf8_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"type": "indicator", "name": "caf\xe9"}')
    assert convert_cli(["convert", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("convert: input is not UTF-8 text")
    assert "Traceback" not in captured.err
