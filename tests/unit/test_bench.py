"""The backup/restore bench: no key on any command line it runs, and its figures add up."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import stat
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from bench import backup_restore as bench
from bench.environment import busy_from_stat, settle
from tests.exit_probe import frozen_count, probe_env

ACCESS = "AKBENCHACCESS0001"
SECRET = "bench-secret-Zq9/x+y=w"  # a made-up key the test looks for


@pytest.fixture
def endpoint() -> bench.Endpoint:
    return bench.Endpoint("http://127.0.0.1:8123", "us-east-1", "bench", ACCESS, SECRET)


def _command_lines(endpoint: bench.Endpoint, tmp_path: Path) -> list[str]:
    source = bench.backup_source(tmp_path / "my.cnf", tmp_path / "xb", tmp_path / "log")
    lines = [source]
    for command in ("backup", "restore"):
        argv = bench.product_argv(command, tmp_path / "spec.json", tmp_path / "s", "b1", ("-x",))
        assert argv[-1] == "-x"
        lines.append(" ".join(argv))
    for peer in bench.PEERS:
        key = f"peers/{peer}/256-0.xbstream.zst"
        lines.append(bench.peer_backup_command(peer, endpoint, key, source, "/opt/aws"))
        lines.append(
            bench.peer_restore_command(peer, endpoint, key, tmp_path / "restore", "/opt/aws")
        )
    return lines


def test_no_key_on_any_command_line(endpoint: bench.Endpoint, tmp_path: Path) -> None:
    lines = _command_lines(endpoint, tmp_path)
    assert len(lines) == 7
    for line in lines:
        assert SECRET not in line
        assert ACCESS not in line


def test_keys_live_only_in_private_files(endpoint: bench.Endpoint, tmp_path: Path) -> None:
    files = bench.write_peer_files(tmp_path / "peers", endpoint)
    for path in (files.aws_credentials, files.rclone_config):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert SECRET in path.read_text()
    assert stat.S_IMODE(files.aws_config.stat().st_mode) == 0o600
    assert SECRET not in files.aws_config.read_text()
    env = files.env(
        {"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "leaked", "RCLONE_CONFIG_X_TYPE": "s3"}
    )
    assert env == {
        "PATH": "/bin",
        "AWS_CONFIG_FILE": str(files.aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(files.aws_credentials),
        "RCLONE_CONFIG": str(files.rclone_config),
    }


def test_aws_restore_streams_one_get_to_the_pipe(endpoint: bench.Endpoint, tmp_path: Path) -> None:
    # `aws s3 cp s3://... -` hangs in s3transfer's non-seekable download: not used
    command = bench.peer_restore_command("aws", endpoint, "k/a b", tmp_path / "r", "/opt/aws")
    fetch = command.split(" | ")[0]
    assert fetch == (
        "/opt/aws --endpoint-url http://127.0.0.1:8123 s3api get-object --bucket bench "
        "--key 'k/a b' /dev/fd/3 3>&1 >/dev/null"
    )
    assert " s3 cp " not in command


def test_ratio_is_product_over_the_fastest_peer() -> None:
    value, best = bench.ratio(9.0, {"aws": 12.0, "rclone": 10.0})
    assert best == "rclone"
    assert value == pytest.approx(0.9)
    assert bench.ratio(3.0, {"aws": 2.0, "rclone": 4.0}) == (1.5, "aws")
    with pytest.raises(ValueError, match="no peer"):
        bench.ratio(1.0, {})


def test_medians_rates_and_round_order() -> None:
    assert bench.medians({"aws": [3.0, 1.0, 2.0], "product": [5.0, 4.0, 9.0]}) == {
        "aws": 2.0,
        "product": 5.0,
    }
    assert bench.mb_per_s(512 * bench.MiB, 4.0) == 128.0
    tools = ("aws", "rclone", "product")
    assert {bench.round_order(n, tools)[0] for n in range(3)} == set(tools)


@pytest.mark.parametrize("tools", [("aws", "rclone", "product"), ("a", "r", "p", "ns")])
def test_every_tool_runs_first_and_after_every_other_as_often(tools: tuple[str, ...]) -> None:
    # a rotation (aws, rclone, product), (rclone, product, aws)... always ran aws right
    # after the product, whose restore restarts the server on rewritten files
    rounds = len(tools) * (1 if len(tools) % 2 == 0 else 2)
    orders = [bench.round_order(n, tools) for n in range(rounds)]
    pairs = [(order[i], order[i + 1]) for order in orders for i in range(len(tools) - 1)]

    assert all(sorted(order) == sorted(tools) for order in orders)
    firsts = [order[0] for order in orders]
    assert all(firsts.count(tool) == rounds // len(tools) for tool in tools)
    expected = rounds * (len(tools) - 1) // (len(tools) * (len(tools) - 1))
    for before in tools:
        for after in tools:
            if before != after:
                assert pairs.count((before, after)) == expected, (before, after, orders)


def size_result(backup: dict[str, float], **changes: Any) -> bench.SizeResult:
    """A 1 GiB raw stream's result with these backup medians (`changes` replace fields)."""
    result = bench.SizeResult(
        size_mib=256,
        raw_bytes=1024 * bench.MiB,
        stored={"aws": 300 * bench.MiB, "rclone": 300 * bench.MiB, "product": 301 * bench.MiB},
        backup=backup,
        restore={"aws": 6.0, "rclone": 5.0, "product": 2.5},
        restore_total=4.0,
        rss_kib={"backup": 160 * 1024, "restore": 170 * 1024},
    )
    return dataclasses.replace(result, **changes)


def test_report_prints_ratios(tmp_path: Path) -> None:
    result = size_result({"aws": 10.0, "rclone": 8.0, "product": 7.2})
    text = bench.report([result], "load average 1.0")
    assert "backup    ratio product / best peer (rclone): 0.90x" in text
    assert "restore   ratio product / best peer (rclone): 0.50x" in text
    assert "backup    product      7.20   142.2         301" in text
    assert "backup 160 MiB, restore 170 MiB" in text


def test_report_prints_the_table_sums_off_variant_beside_the_default() -> None:
    result = size_result({"aws": 10.0, "rclone": 8.0, "product": 12.0, bench.NO_SUMS: 7.2})
    text = bench.report([result], "load average 1.0")
    assert "backup    ratio product / best peer (rclone): 1.50x" in text
    assert "backup    product, table sums off     7.20   142.2" in text
    assert "backup    ratio (table sums off) / best peer (rclone): 0.90x" in text
    assert "restore   ratio product / best peer (rclone): 0.50x" in text


def test_report_prints_the_machines_busy_time_per_backup() -> None:
    cpu = {"aws": 45.1, "rclone": 47.0, "product": 42.4, bench.NO_SUMS: 42.0}
    result = size_result({"aws": 10.0, "rclone": 11.0, "product": 9.3}, backup_cpu=cpu)
    text = bench.report([result], "load average 1.0")
    assert (
        "backup    machine busy, core-s (median): aws 45.1, rclone 47.0, product 42.4, "
        "product, table sums off 42.0; product / aws 0.94x"
    ) in text
    assert "machine busy" not in bench.report([size_result(result.backup)], "")


def test_busy_time_counts_every_field_but_idle_and_iowait() -> None:
    text = "cpu  100 20 30 4000 500 6 7 8 90 10\ncpu0 50 10 15 2000 250 3 3 4 45 5\n"
    assert busy_from_stat(text, 100.0) == (100 + 20 + 30 + 6 + 7 + 8) / 100.0
    with pytest.raises(ValueError, match="total line"):
        busy_from_stat("cpu0 1 2 3 4 5 6 7 8\n", 100.0)


def test_the_product_is_byte_compiled_as_packed(tmp_path: Path) -> None:
    from bench.environment import compile_product

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("VALUE = 1\n")
    compile_product([package])
    compiled = list((package / "__pycache__").glob("mod.*.pyc"))
    assert len(compiled) == 1
    # timestamp-validated, as Python writes it: a later edit is compiled again, never stale
    assert int.from_bytes(compiled[0].read_bytes()[4:8], "little") == 0
    (package / "broken.py").write_text("def (:\n")
    with pytest.raises(RuntimeError, match=r"byte-compiling .*pkg failed"):
        compile_product([package])


def test_the_environment_compiles_before_any_server_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench import environment

    class CompiledFirstError(Exception):
        pass

    def compile_first(roots: object = None) -> float:
        raise CompiledFirstError

    monkeypatch.setattr(environment, "compile_product", compile_first)
    monkeypatch.setattr(environment.tempfile, "mkdtemp", lambda prefix: pytest.fail("started"))
    with pytest.raises(CompiledFirstError), environment.bench_environment("bench-x-", 64, "b"):
        pytest.fail("the environment started without compiling the product")


def test_small_sizes_get_more_rounds_and_every_run_is_printed() -> None:
    # a 2 s run: noise is a large part of it
    assert bench.rounds_for(252, None, 4) > bench.rounds_for(3980, None, 4)
    assert bench.rounds_for(252, 5, 4) == 5  # --rounds wins
    result = size_result(
        {"aws": 10.0, "rclone": 8.0, "product": 7.2},
        rounds=3,
        runs={"backup product": [7.1, 7.2, 9.3], "restore rclone": [5.0, 4.9, 6.1]},
    )
    text = bench.report([result], "load average 1.0")
    assert "raw stream 1024 MiB, median of 3 rounds" in text
    assert "backup    product      7.20   142.2         301  7.10 7.20 9.30" in text
    assert "restore   rclone       5.00   204.8              5.00 4.90 6.10" in text
    assert "backup    aws         10.00   102.4         300\n" in text  # no runs recorded


@pytest.mark.parametrize("compare_sums", [False, True])
@pytest.mark.parametrize("size", [252, 3980])
def test_the_default_rounds_balance_the_order_of_the_tools(size: int, compare_sums: bool) -> None:
    # 3 rounds of 4 tools left one of them never first; 7 rounds of 3, one first 3 times
    tools = bench.turns(compare_sums)
    rounds = bench.rounds_for(size, None, len(tools))
    assert rounds >= (7 if size < 1024 else 3)
    orders = [bench.round_order(n, tools) for n in range(rounds)]
    firsts = collections.Counter(order[0] for order in orders)
    assert set(firsts) == set(tools)
    assert len(set(firsts.values())) == 1, firsts
    follows = collections.Counter(
        (before, after) for order in orders for before, after in itertools.pairwise(order)
    )
    assert len(follows) == len(tools) * (len(tools) - 1)
    assert len(set(follows.values())) == 1, follows


def test_the_ratio_is_also_printed_round_by_round() -> None:
    assert bench.per_round([9.0, 11.0], [10.0, 10.0]) == [0.9, 1.1]
    with pytest.raises(ValueError, match="2 product runs against 1 peer runs"):
        bench.per_round([9.0, 11.0], [10.0])
    result = size_result(
        {"aws": 10.0, "rclone": 8.0, "product": 7.2},
        rounds=3,
        runs={"backup product": [7.2, 8.0, 7.0], "backup rclone": [8.0, 10.0, 7.0]},
    )
    text = bench.report([result], "load average 1.0")
    assert (
        "backup    per round (product / rclone, same round): 0.90 0.80 1.00; median 0.90x"
    ) in text
    assert "restore   per round: no runs recorded" in text


def test_the_products_process_exits_as_the_cli_does(tmp_path: Path) -> None:
    # `python -m database_backup.cli` leaves with its live objects frozen (0.1-0.2 s less
    # than CPython's final collections): the bench's process must exit the same way.
    rss = tmp_path / "rss"
    argv = bench.product_argv("backup", tmp_path / "missing.json", tmp_path / "state", "b1")
    env = {**probe_env(tmp_path / "probe"), "BENCH_RSS_FILE": str(rss)}

    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2, done.stderr
    assert int(rss.read_text()) > 0
    assert frozen_count(done.stderr) > 1_000


class _Recorder:
    """A stand-in `Bench` for `measure`: records what it is asked, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.server = self

    def checksum_tables(self, database: str) -> str:
        return "same"

    def settle(self) -> None:
        self.calls.append("settle")

    def product_backup(self, backup_id: str, extra: Any = None) -> tuple[float, int, int, int]:
        self.calls.append("product backup" if extra is None else "product backup, no sums")
        return 1.0, 10, 5, 100

    def product_restore(self, backup_id: str) -> tuple[float, float, int]:
        self.calls.append("product restore")
        return 1.0, 2.0, 100

    def peer_backup(self, peer: str, key: str) -> tuple[float, int]:
        self.calls.append(f"{peer} backup")
        return 1.0, 5

    def peer_restore(self, peer: str, key: str) -> float:
        self.calls.append(f"{peer} restore")
        return 1.0

    def delete_all(self) -> None:
        self.calls.append("delete")

    def warm(self) -> bool:
        self.calls.append("warm")
        return True


def test_every_timed_run_starts_settled() -> None:
    # A peer's restore leaves GiBs of dirty pages, the product's none: whoever ran next
    # paid for the writeback, and a backup after a backup found the datadir cached.
    recorder = _Recorder()

    bench.measure(cast(bench.Bench, recorder), 256, rounds=3, compare_sums=True)

    ends = ("backup", "restore", "no sums")
    timed = [n for n, call in enumerate(recorder.calls) if call.endswith(ends)]
    assert len(timed) == 3 * (2 * (len(bench.PEERS) + 1) + 1)
    assert all(recorder.calls[n - 1] == "settle" for n in timed), recorder.calls


def test_the_server_a_product_restore_restarted_is_warmed_before_anything_else_runs() -> None:
    # The restore leaves an empty buffer pool, which only the product's table sums read
    # through: every later product backup, and no peer's, met it cold.
    recorder = _Recorder()

    bench.measure(cast(bench.Bench, recorder), 256, rounds=3, compare_sums=True)

    restores = [n for n, call in enumerate(recorder.calls) if call == "product restore"]
    assert len(restores) == 3
    assert all(recorder.calls[n + 1] == "warm" for n in restores), recorder.calls
    assert recorder.calls.count("warm") == 3


class _Sizes:
    """A stand-in server: a buffer pool and a table of given sizes; records what it runs."""

    def __init__(self, pool: int, table: int) -> None:
        self.values = {"@@innodb_buffer_pool_size": pool, "data_length": table}
        self.executed: list[str] = []

    def scalar(self, sql: str) -> str:
        return next(str(v) for key, v in self.values.items() if key in sql)

    def execute(self, sql: str) -> None:
        self.executed.append(sql)


@pytest.mark.parametrize(("table", "read"), [(250 << 20, True), (4 << 30, False)])
def test_warming_reads_the_table_only_when_it_fits_the_buffer_pool(table: int, read: bool):
    server = _Sizes(pool=256 << 20, table=table)
    stand_in = bench.Bench.__new__(bench.Bench)
    stand_in.server = server

    assert stand_in.warm() is read
    assert server.executed == (["SELECT COUNT(*) FROM bench.t"] if read else [])


def test_settling_evicts_every_file_of_the_datadir(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    (datadir / "db").mkdir(parents=True)
    for name in ("ibdata1", "db/t.ibd", "db/t.frm"):
        (datadir / name).write_bytes(b"x" * 8192)
    (datadir / "link").symlink_to(datadir / "ibdata1")

    assert settle(datadir) == 3
