"""The benchmark's pure helpers: /proc parsing, ghz reports, tables, its docs section."""

from __future__ import annotations

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import descriptor_pb2

from tests.bench_functions.capture import last_per_composite, with_nodes
from tests.bench_functions.floor import increments
from tests.bench_functions.load import protoset
from tests.bench_functions.report import (
    Run,
    cpu_ms_per_call,
    cpu_ticks,
    ghz_summary,
    memory_kib,
    replace_section,
    span,
    table,
    work,
)

# proc(5): pid (comm) state ppid ... utime (14) stime (15) ...; a comm with spaces and ")".
STAT = "4242 (python3 (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 5 0 99"


def test_cpu_ticks_are_utime_plus_stime_whatever_the_command_name() -> None:
    assert cpu_ticks(STAT) == 1234 + 567


def test_memory_reads_rss_and_its_peak_in_kib() -> None:
    status = "Name:\tpython3\nVmPeak:\t  900 kB\nVmHWM:\t  81920 kB\nVmRSS:\t  61440 kB\n"
    assert memory_kib(status) == {"VmHWM": 81920, "VmRSS": 61440}


def test_cpu_per_call_in_milliseconds() -> None:
    assert cpu_ms_per_call(ticks=200, calls=500, hz=100) == 4.0


def test_ghz_report_latencies_are_nanoseconds() -> None:
    report = {
        "count": 500,
        "rps": 251.5,
        "latencyDistribution": [
            {"percentage": 50, "latency": 3_500_000},
            {"percentage": 99, "latency": 12_250_000},
        ],
        "statusCodeDistribution": {"OK": 499, "Unavailable": 1},
    }
    load = ghz_summary(report)
    assert (load.calls, load.ok, load.p50_ms, load.p99_ms, load.rps) == (
        500,
        499,
        3.5,
        12.25,
        251.5,
    )


def test_span_is_the_median_and_range_of_repetitions() -> None:
    assert span([3.0, 1.0, 2.0]) == "2.00 (1.00-3.00)"
    assert span([5.0, 5.0], ".1f") == "5.0"


def run(name: str, cpu: float, rss: float) -> Run:
    return Run(name, 1.0, 2.0, cpu, {4: 100.0}, rss, rss + 1)


def test_table_gives_ratios_of_medians_to_the_reference_only_for_the_others() -> None:
    runs = [run("go", 2.0, 40.0), run("py", 4.0, 60.0), run("go", 4.0, 40.0), run("py", 6.0, 50.0)]
    lines = table(runs, ["go", "py"], "go", [4], {"go": "10 B", "py": "20 B"}).splitlines()
    assert lines[0].split(" | ")[2:5] == ["p50 ms (1 client)", "p99 ms (1 client)", "CPU ms/call"]
    go, py = lines[2].split(" | "), lines[3].split(" | ")
    assert go[1] == "10 B"
    assert go[4] == "3.00 (2.00-4.00)"
    assert py[4] == "5.00 (4.00-6.00) **1.67x**"  # 5 / 3
    assert py[6] == "55.0 (50.0-60.0) **1.38x**"  # RSS: 55 / 40
    assert "**" not in lines[2]


def test_the_section_replaces_only_itself_and_keeps_other_sections() -> None:
    doc = "# Performance\n\n## Other\n\nkept\n\n## Mine\n\nold\n\n## Later\n\nalso kept\n"
    out = replace_section(doc, "## Mine", "new")
    assert out == "# Performance\n\n## Other\n\nkept\n\n## Mine\n\nnew\n\n## Later\n\nalso kept\n"
    assert (
        replace_section("# Performance\n", "## Mine", "new") == "# Performance\n\n## Mine\n\nnew\n"
    )
    assert replace_section(out, "## Mine", "new") == out


def test_import_increments_add_up_to_the_last_reading() -> None:
    steps = increments([("interpreter", 10240), ("grpc", 30720), ("ours", 31744)])
    assert steps == [("interpreter", 10.0), ("grpc", 20.0), ("ours", 1.0)]


def request(claim: str, composite: str, spec: dict[str, object]) -> bytes:
    req = fnv1.RunFunctionRequest()
    labels = {"crossplane.io/claim-name": claim} if claim else {}
    req.observed.composite.resource.CopyFrom(
        resource.dict_to_struct({"metadata": {"name": composite, "labels": labels}, "spec": spec})
    )
    data: bytes = req.SerializeToString()
    return data


def test_the_last_request_per_composite_is_kept_named_by_its_claim() -> None:
    first, second = request("llama", "llama-x1", {"n": 1}), request("llama", "llama-x1", {"n": 2})
    pool = request("", "a100-pool", {})
    kept = last_per_composite("f", [first, pool, second])
    assert [(c.composite, c.request) for c in kept] == [("llama", second), ("a100-pool", pool)]


def test_the_protoset_holds_run_function_and_its_imports_before_it() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(protoset()).file
    names = [f.name for f in files]
    assert names.index("google/protobuf/struct.proto") < names.index(fnv1.DESCRIPTOR.name)
    (service,) = [s for f in files for s in f.service if f.name == fnv1.DESCRIPTOR.name]
    assert [m.name for m in service.method] == ["RunFunction"]


def test_a_pool_request_gets_the_nodes_given_and_keeps_everything_else() -> None:
    req = fnv1.RunFunctionRequest.FromString(request("", "a100-pool", {"n": 1}))
    req.required_resources["nodes"].items.add().resource.CopyFrom(
        resource.dict_to_struct({"metadata": {"name": "old"}})
    )
    req.required_resources["gpupools"].items.add()
    nodes = [{"metadata": {"name": f"node-{i}"}} for i in range(3)]
    out = fnv1.RunFunctionRequest.FromString(with_nodes(req.SerializeToString(), nodes))
    assert [
        resource.struct_to_dict(i.resource) for i in out.required_resources["nodes"].items
    ] == nodes
    assert len(out.required_resources["gpupools"].items) == 1
    assert out.observed == req.observed


def test_work_counts_what_the_request_holds_and_the_answer_composed() -> None:
    req = fnv1.RunFunctionRequest.FromString(request("", "p", {}))
    req.observed.resources["a"].resource.update({"kind": "Deployment"})
    req.required_resources["nodes"].items.add()
    req.required_resources["pools"].items.add()
    rsp = fnv1.RunFunctionResponse()
    for name in ("a", "b", "c"):
        rsp.desired.resources[name].resource.update({"kind": "Service"})
    data, answer = req.SerializeToString(), rsp.SerializeToString()
    assert work(data, answer) == (
        f"{len(data):,} B: 1 observed, 2 required -> 3 resources, {len(answer):,} B"
    )
