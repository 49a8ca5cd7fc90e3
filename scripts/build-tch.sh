#!/usr/bin/env bash
# Builds `vision` with the libtorch backend (`ml.device = "tch-cpu"`, `--device tch-cpu`).
#
# libtorch comes from PyPI's `torch` wheel, in a virtualenv of its own (the version must be the
# one the `tch` crate was written against: 2.9.0 for tch 0.22 / burn-tch 0.22). The result is
# `target/release/vision` plus `target/release/vision-tch`, a wrapper that puts libtorch's shared
# libraries on the library path and runs it.
#
#   scripts/build-tch.sh                 # venv in target/libtorch-venv (~7 GB with CUDA libs)
#   LIBTORCH_VENV=/path scripts/build-tch.sh
#   target/release/vision-tch bench train --device tch-cpu --python /path/to/venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
torch_version=2.9.0
venv="${LIBTORCH_VENV:-$PWD/target/libtorch-venv}"
if ! "$venv/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==$torch_version"
fi
PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 cargo build --release -p vision --features tch "$@"
torch_lib=$("$venv/bin/python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
# the PyPI wheel is built with CUDA: libtorch_cuda.so needs the nvidia-* wheels' libraries to load
cuda_libs=$(find "$venv" -path '*/nvidia/*/lib' -type d | sort | tr '\n' ':')
cat > target/release/vision-tch <<WRAPPER
#!/usr/bin/env bash
export LD_LIBRARY_PATH="$torch_lib:$cuda_libs\${LD_LIBRARY_PATH:-}"
exec "\$(dirname "\$0")/vision" "\$@"
WRAPPER
chmod +x target/release/vision-tch
echo "built target/release/vision-tch (libtorch $torch_version from $venv)"
