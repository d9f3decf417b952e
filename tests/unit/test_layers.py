"""Which module may import which (the graph `python -m hack.imports` prints).

functions -> functions.common; each function package stands alone; the runtime programs in
sidecar/ never import the functions; a function imports a runtime program's interface
(sidecar.contract) only where it renders that program, and the redis and kubernetes clients
only where it runs them.
"""

from __future__ import annotations

from typing import get_args

import pytest

from functions.common.api import tokencache as tokencache_api
from hack.imports import closure, read
from sidecar import contract

GRAPH = read()
FUNCTIONS = ("functions.inferenceservice", "functions.gpupool", "functions.tokencache")
# Modules that render a program of the sidecar image, and so read its contract.
RENDERS_A_PROGRAM = {
    "functions.inferenceservice.sidecar_container",  # the metrics sidecar
    "functions.gpupool.metricsagent",  # the same program in node mode
    "functions.tokencache.redis_tier",  # the expirer
    "functions.tokencache.warmupjob",  # the warmup Job
    "functions.tokencache.fn",  # the warmup plan
}


def modules(prefix: str) -> list[str]:
    return sorted(n for n in GRAPH if n == prefix or n.startswith(prefix + "."))


@pytest.mark.parametrize("package", FUNCTIONS)
def test_a_function_imports_only_itself_and_common(package: str) -> None:
    for name in modules(package):
        foreign = {
            i
            for i in GRAPH[name].imports
            if i.startswith("functions.")
            and not i.startswith((package, "functions.common"))
            and i != "functions"
        }
        assert not foreign, f"{name} imports {sorted(foreign)}"


def test_common_imports_no_function() -> None:
    for name in modules("functions.common"):
        assert not {i for i in GRAPH[name].imports if i.startswith(FUNCTIONS)}, name


def test_functions_import_only_the_contract_of_the_programs_they_render() -> None:
    for name in modules("functions"):
        runtime = {i for i in GRAPH[name].imports if i.startswith("sidecar")}
        allowed = {"sidecar.contract"} if name in RENDERS_A_PROGRAM else set()
        assert runtime <= allowed, f"{name} imports {sorted(runtime - allowed)}"


def test_the_sidecar_image_programs_never_import_the_functions() -> None:
    for name in modules("sidecar"):
        assert not {i for i in GRAPH[name].imports if i.startswith("functions")}, name


def test_the_program_contract_is_standard_library_only() -> None:
    assert GRAPH["sidecar.contract"].external == frozenset()
    assert GRAPH["sidecar.contract"].imports == frozenset()


@pytest.mark.parametrize(
    "program", ["sidecar.main", "sidecar.expirer", "sidecar.warmup", "sidecar.contract"]
)
def test_runtime_programs_do_not_pull_in_the_kubernetes_client(program: str) -> None:
    reached = closure(GRAPH, program)
    assert not any("kubernetes" in GRAPH[m].external for m in reached), sorted(reached)


def test_functions_use_redis_and_kubernetes_clients_only_where_they_run_them() -> None:
    # Quantity parsing is the kubernetes client's (a well-kept parser, not ours), loaded from its
    # file without importing the package (tests/serving/test_imports.py); no function talks to
    # Redis.
    users = {
        lib: sorted(n for n in modules("functions") if lib in GRAPH[n].external)
        for lib in ("redis", "kubernetes")
    }
    assert users == {"redis": [], "kubernetes": []}


def test_the_warmup_api_values_are_the_programs() -> None:
    # The API model cannot import the program's contract (layering above); both must agree.
    assert get_args(tokencache_api.WarmupApi) == get_args(contract.WarmupApi)
