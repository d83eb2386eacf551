#!/usr/bin/env bash
# Build the double-clickable app (dist/TurbofanDesktop/) with PyInstaller from a fresh virtual environment.
#
#   scripts/build_app.sh                 fresh venv in .venv-build (deleted and re-created), then build
#   scripts/build_app.sh --venv .venv    reuse an existing venv (installs '.[package]' into it if needed)
#   scripts/build_app.sh --dist DIR      put the result in DIR instead of ./dist
#   scripts/build_app.sh --work DIR      PyInstaller's work folder (default: build/ beside the dist folder)
#
# Environment: PYTHON (default python3) makes the fresh venv; PIP_ARGS are passed to pip install (for
# example a local wheel cache); TORCH_INDEX_URL, when set, is where torch is installed from first (use
# https://download.pytorch.org/whl/cpu where pip would otherwise pick the multi-GB CUDA build); the
# build refuses a CUDA torch unless ALLOW_CUDA_TORCH=1. On Linux the symbol tables of torch's libraries
# are stripped (TURBOFAN_STRIP_LIBS=0 keeps them). Prints the build time, the folder size and the
# executable's path.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
venv=""
fresh=1
dist="$repo/dist"
work=""

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv=$2; fresh=0; shift 2 ;;
        --dist) dist=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
dist=$(mkdir -p "$dist" && cd "$dist" && pwd)
work=${work:-"$(dirname "$dist")/build"}

if [ "$fresh" = 1 ]; then
    venv="$repo/.venv-build"
    echo "+ fresh virtual environment in $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --upgrade pip ${PIP_ARGS:-}
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        torch_req=$(grep -o '"torch[<>=!~][^"]*"' pyproject.toml | head -1 | tr -d '"')
        "$venv/bin/python" -m pip install "$torch_req" --index-url "$TORCH_INDEX_URL" ${PIP_ARGS:-}
    fi
    # A regular (not editable) install: the build reads the distribution metadata it leaves behind.
    "$venv/bin/python" -m pip install "$repo[package]" ${PIP_ARGS:-}
elif ! "$venv/bin/python" -c "import PyInstaller, turbofan_desktop" 2>/dev/null; then
    echo "+ installing '.[package]' into $venv"
    "$venv/bin/python" -m pip install -e "$repo[package]" ${PIP_ARGS:-}
fi

# The app is meant to ship CPU-only torch: a CUDA build makes the folder several GB larger.
if ! "$venv/bin/python" -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
    echo "the torch in $venv is a CUDA build; install the CPU build (TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu)" >&2
    [ "${ALLOW_CUDA_TORCH:-0}" = 1 ] || exit 1
fi

start=$(date +%s)
"$venv/bin/python" -m PyInstaller build.spec --noconfirm --clean --distpath "$dist" --workpath "$work"
end=$(date +%s)

app="$dist/TurbofanDesktop"
exe="$app/turbofan-desktop"
[ -e "$exe.exe" ] && exe="$exe.exe"
echo "build time: $((end - start)) s"
echo "folder size: $(du -sh "$app" | cut -f1)  ($app)"
echo "executable: $exe"
"$exe" --version
