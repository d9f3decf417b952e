"""Every example through the real `crossplane composition render` (CLI + core render engine),
with our functions served over gRPC: the output must match the reviewed golden files.

A mismatch prints a unified diff per file (golden -> rendered, the first DIFF_LINES lines).
Regenerate after an intended change with `UPDATE_GOLDEN=1 make test`, then read the diff.
"""

from __future__ import annotations

import difflib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.toolchain import ROOT, Tools

EXAMPLES = sorted((ROOT / "examples" / "claims").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"
FORMS = {"claims": 0, "v2": 1}
DIFF_LINES = 200  # per file


def render(tools: Tools, *args: str, port_base: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TOOLS_DIR": str(tools.dir),
        # Separate ports per xdist worker and form: tests render concurrently.
        "FN_PORT_BASE": str(port_base),
    }
    return subprocess.run(
        [sys.executable, "-m", "hack.render", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        check=False,
    )


def port_base(offset: int) -> int:
    """Ports per xdist worker and form; RENDER_PORT_BASE moves the block (default 21000) so that
    two test runs on one machine (e.g. two worktrees) do not collide."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = int(os.environ.get("RENDER_PORT_BASE", "21000"))
    return base + 100 * int(worker or 0) + 10 * offset


def split_by_source(stdout: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith("# Source: "):
            current = Path(line.removeprefix("# Source: ").strip()).name
            out[current] = ""
        elif current is not None:
            out[current] += line
    return out


@pytest.fixture(scope="module", params=sorted(FORMS))
def rendered(request: pytest.FixtureRequest, tools: Tools) -> tuple[str, dict[str, str]]:
    form = request.param
    result = render(tools, "--form", form, port_base=port_base(FORMS[form]))
    assert result.returncode == 0, result.stderr
    return form, split_by_source(result.stdout)


def golden_diff(golden: Path, text: str) -> str:
    """A unified diff from the golden file to `text`, cut after DIFF_LINES lines."""
    name = golden.relative_to(ROOT)
    if not golden.exists():
        return f"{name}: no golden file (UPDATE_GOLDEN=1 writes it)"
    lines = list(
        difflib.unified_diff(
            golden.read_text().splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=str(name),
            tofile=f"{name} (rendered)",
        )
    )
    shown = "".join(line if line.endswith("\n") else line + "\n" for line in lines[:DIFF_LINES])
    more = len(lines) - DIFF_LINES
    return shown + (f"... {more} more diff lines\n" if more > 0 else "")


def test_every_example_renders_as_reviewed(rendered: tuple[str, dict[str, str]]) -> None:
    form, outputs = rendered
    assert sorted(outputs) == [p.name for p in EXAMPLES]
    diffs = []
    for name, text in outputs.items():
        golden = GOLDEN / form / name
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
        elif not golden.exists() or golden.read_text() != text:
            diffs.append(golden_diff(golden, text))
    if diffs:
        pytest.fail(
            f"{form}: {len(diffs)} render(s) differ from tests/render/golden/{form} "
            "(UPDATE_GOLDEN=1 to accept):\n" + "\n".join(diffs),
            pytrace=False,
        )


def test_render_is_deterministic(tools: Tools) -> None:
    example = str(ROOT / "examples" / "claims" / "shared-cache.yaml")
    first = render(tools, example, port_base=port_base(2))
    second = render(tools, example, port_base=port_base(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


@pytest.mark.parametrize("validate", [True, False], ids=["schema-validation", "function-check"])
def test_invalid_claim_names_the_field_and_exits_non_zero(
    tools: Tools, tmp_path: Path, validate: bool
) -> None:
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "examples" / "claims" / "llama-70b.yaml").read_text()
    bad.write_text(text.replace("sharing: mig", "sharing: shared"))
    args = [str(bad)] if validate else ["--no-validate", str(bad)]
    result = render(tools, *args, port_base=port_base(3 if validate else 4))
    assert result.returncode != 0
    assert "spec.gpu.sharing" in result.stderr
    assert "exclusive" in result.stderr  # the allowed values are listed
    assert result.stdout.strip() in ("", f"# Source: {bad}")


def test_a_busy_port_is_a_clear_error(tools: Tools) -> None:
    base = port_base(5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", base + 1))
        sock.listen()
        result = render(tools, str(EXAMPLES[0]), port_base=base)
    assert result.returncode != 0
    assert f"127.0.0.1:{base + 1}" in result.stderr
    assert "function-gpupool" in result.stderr
