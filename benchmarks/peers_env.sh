#!/usr/bin/env bash
# Build .bench-venv/ with the peer libraries of `make bench` (Surprise, fastai, implicit),
# idempotently.
#
#   bash benchmarks/peers_env.sh          # creates or updates .bench-venv/, then smoke-imports
#   BENCH_VENV=/elsewhere bash benchmarks/peers_env.sh
#
# Order matters: torch first (pinned, the CPU wheel on this machine's disk; a looser spec pulls
# a multi-GB CUDA build), then fastai with --no-deps (its metadata wants torchvision and spacy),
# then the rest of benchmarks/requirements-peers.txt, a complete lock, also with --no-deps.
# A stamp holding the hash of the lock and of this script makes a second run a no-op.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${BENCH_VENV:-$root/.bench-venv}"
req="$here/requirements-peers.txt"
python="${PYTHON:-python3}"
stamp="$venv/.peers-installed"
want="$(cat "$req" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "peers_env: $venv is up to date"
  exit 0
fi

t0=$SECONDS
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
pin() { grep -iE "^$1==" "$req" | head -n1; }

echo "peers_env: torch ($(pin torch))"
"${pip[@]}" "$(pin torch)" -c "$req"
echo "peers_env: fastai --no-deps ($(pin fastai)) [+$((SECONDS - t0)) s]"
"${pip[@]}" --no-deps "$(pin fastai)"
echo "peers_env: the rest of $(basename "$req") --no-deps [+$((SECONDS - t0)) s]"
"${pip[@]}" --no-deps -r "$req"

# Smoke test: everything peers.py imports must be there (a lock missing a package shows here).
"$venv/bin/python" - <<'EOF'
import fastai, implicit, surprise, torch
from fastai.collab import CollabDataLoaders, collab_learner  # noqa: F401
from implicit.cpu.als import AlternatingLeastSquares  # noqa: F401
from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: F401
from implicit.nearest_neighbours import BM25Recommender  # noqa: F401
from surprise import SVD, BaselineOnly, SVDpp  # noqa: F401
print(f"peers_env: ok: torch {torch.__version__}, fastai {fastai.__version__}, "
      f"surprise {surprise.__version__}, implicit {implicit.__version__}")
EOF
echo "$want" > "$stamp"
echo "peers_env: $venv ready in $((SECONDS - t0)) s"
