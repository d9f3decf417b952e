#!/usr/bin/env bash
# Check the metrics sidecar's GPU values against nvidia-smi on a real GPU machine, read-only
# (never changes MIG mode, clocks or compute mode). Report, the sidecar's log, its /metrics and
# a recorded NVML fixture go to --out DIR (default: $OUT, else ./gpu-check-out).
#
#   hack/gpu-check.sh [--out DIR] [--scrapes N]
#
# Needs only the repository, nvidia-smi and a Python >= 3.10 that can import pynvml
# (nvidia-ml-py), prometheus_client and click. No network access. It tries, in order:
#   1. $GPU_CHECK_PYTHON, if set;
#   2. .venv/bin/python (the project venv, e.g. carried along with the repository);
#   3. python3 with the carried venv's site-packages on PYTHONPATH (.venv/bin/python is a
#      link to the interpreter that built it and dangles on another machine; the packages
#      the GPU check needs are pure Python, so another python3 can load them);
#   4. python3 as it is.
# The whole .venv is ~190 MB; the check needs only three pure-Python entries of its
# site-packages (1.5 MB), so copying just these next to the repository is enough:
#   .venv/lib/python3.11/site-packages/{pynvml.py,prometheus_client,click}
# (tested with python3 3.10, 3.12 and 3.13 on the target).
# Without any of these: `python3 -m venv v && v/bin/pip install nvidia-ml-py prometheus-client
# click` (needs PyPI, or `pip download` the three wheels elsewhere and --no-index --find-links).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need='import sys; assert sys.version_info >= (3, 10); import pynvml, prometheus_client, click'
try() { "$@" -c "$need" >/dev/null 2>&1; }

candidates=()
[[ -n ${GPU_CHECK_PYTHON:-} ]] && candidates+=("$GPU_CHECK_PYTHON")
[[ -x .venv/bin/python ]] && candidates+=(.venv/bin/python)
for py in "${candidates[@]}"; do
  if try "$py"; then exec "$py" hack/gpu-check.py "$@"; fi
done

if command -v python3 >/dev/null 2>&1; then
  for site in .venv/lib/python3*/site-packages; do
    [[ -d $site ]] || continue
    if PYTHONPATH="$root/$site${PYTHONPATH:+:$PYTHONPATH}" try python3; then
      echo "note: using $(command -v python3) with $site on PYTHONPATH" >&2
      PYTHONPATH="$root/$site${PYTHONPATH:+:$PYTHONPATH}" exec python3 hack/gpu-check.py "$@"
    fi
  done
  if try python3; then exec python3 hack/gpu-check.py "$@"; fi
fi

echo "error: no Python >= 3.10 here can import pynvml, prometheus_client and click." >&2
echo "  Carry the project's .venv with the repository, or set GPU_CHECK_PYTHON, or install" >&2
echo "  nvidia-ml-py prometheus-client click into a venv (see the comment in $0)." >&2
exit 2
