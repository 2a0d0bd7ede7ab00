#!/bin/sh
# Run pytest in another environment, check that the run left its JAX untouched, print one summary line.
#   tools/test_env.sh NAME VENV [pytest arguments...]
# The line ("colab: Python 3.13.0, jax 0.7.2, ...: passed in 123 s") is also appended to
# build/environments.txt, which .ci/run prints at the end.
set -u
name=$1 venv=$2
shift 2
py="$venv/bin/python"
versions() {
  "$py" - <<'PY'
import sys
from importlib.metadata import version

print(f"Python {sys.version.split()[0]}, " + ", ".join(f"{p} {version(p)}" for p in ("jax", "jaxlib", "flax", "optax")))
PY
}
before=$(versions) || exit 1
start=$(date +%s)
"$py" -m pytest -p no:cacheprovider "$@"
status=$?
after=$(versions)
if [ "$before" != "$after" ]; then
  echo "error: $name: running the lectures changed the installed packages (a setup cell reinstalled them):" >&2
  echo "  before: $before" >&2
  echo "  after:  $after" >&2
  status=1
fi
result=passed
[ "$status" -eq 0 ] || result=FAILED
line="$name: $after: $result in $(( $(date +%s) - start )) s"
mkdir -p build
echo "$line" >> build/environments.txt
echo "$line"
exit "$status"
