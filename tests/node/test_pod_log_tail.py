"""The kubelet's container log files, copied while they exist: complete records only, split lines
joined, rotations followed by inode, files removed with their container tolerated."""

from __future__ import annotations

from pathlib import Path

from testbed.node.podlogs import PodLogTail, parse_cri_line


def _container_dir(root: Path, pod: str, restart: int = 0) -> Path:
    folder = root / f"soak_{pod}_uid-{pod}" / "connector-runtime"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{restart}.log"


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_parse_cri_line_reads_the_kubelet_format() -> None:
    record = parse_cri_line('2026-12-07T07:10:00.123456789Z stdout F {"message": "a b"}\n')
    assert record is not None
    assert (record.stream, record.partial, record.text) == ("stdout", False, '{"message": "a b"}')
    partial = parse_cri_line("2026-12-07T07:10:00Z stderr P half")
    assert partial is not None and partial.partial
    assert parse_cri_line("2026-12-07T07:10:00Z stdout F ") is not None  # an empty line is a record
    assert parse_cri_line("not a cri line") is None
    assert parse_cri_line("2026-12-07T07:10:00Z stdin F x") is None


def test_every_line_of_every_container_once_in_order(tmp_path: Path) -> None:
    pods = tmp_path / "pod-logs"
    tail = PodLogTail(pods, "soak_", tmp_path / "out.log")
    first = _container_dir(pods, "p1", 0)
    _append(first, "T stdout F one\nT stdout P tw")
    assert tail.sweep() == 1
    _append(first, "o-a\nT stdout P b\n")  # the record's end arrives, then a split record starts
    assert tail.sweep() == 0
    _append(first, "T stdout F c\nT stderr F three\n")
    assert tail.sweep() == 2
    restarted = _container_dir(pods, "p1", 1)
    _append(restarted, "T stdout F four\n")
    assert tail.sweep() == 1
    assert (tmp_path / "out.log").read_text().splitlines() == ["one", "two-abc", "three", "four"]


def test_rotation_is_followed_and_removed_files_are_no_error(tmp_path: Path) -> None:
    pods = tmp_path / "pod-logs"
    tail = PodLogTail(pods, "soak_", tmp_path / "out.log")
    log = _container_dir(pods, "p1", 0)
    _append(log, "T stdout F before\n")
    tail.sweep()
    _append(log, "T stdout F written before the rename\n")
    log.rename(log.with_name("0.log.20261207-071000"))  # what the kubelet does to a full file
    _append(log, "T stdout F after\n")
    tail.sweep()
    other = _container_dir(tmp_path / "pod-logs", "p2", 0)
    _append(other, "T stdout F gone soon\n")
    other.with_name("0.log.20261207-070000.gz").write_bytes(b"\x1f\x8b")  # compressed: never read
    tail.sweep()
    other.unlink()  # removed with its container
    assert tail.sweep() == 0
    assert sorted((tmp_path / "out.log").read_text().splitlines()) == sorted(
        ["before", "written before the rename", "after", "gone soon"]
    )


def test_other_namespaces_are_not_copied(tmp_path: Path) -> None:
    pods = tmp_path / "pod-logs"
    _append(_container_dir(pods, "p1"), "T stdout F mine\n")
    foreign = pods / "kube-system_dns_uid" / "dns" / "0.log"
    foreign.parent.mkdir(parents=True)
    _append(foreign, "T stdout F not mine\n")
    tail = PodLogTail(pods, "soak_", tmp_path / "out.log")
    tail.sweep()
    assert (tmp_path / "out.log").read_text() == "mine\n"
