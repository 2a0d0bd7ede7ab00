#!/bin/sh
# Run pytest in one environment, check that the run left its JAX untouched, print one summary line:
#   tools/test_env.sh NAME VENV [pytest arguments...]
#   -> "colab: Python 3.13.0, jax 0.7.2, jaxlib 0.7.2, flax 0.11.2, optax 0.2.8: passed in 123 s"
# The line is also appended to $ENV_SUMMARY when that is set (.ci/run collects the lines there).
set -u
name=$1 venv=$2
shift 2
py="$venv/bin/python"
versions() {
  "$py" -c 'import sys; from importlib.metadata import version as v
print(f"Python {sys.version.split()[0]}, " + ", ".join(f"{p} {v(p)}" for p in ("jax", "jaxlib", "flax", "optax")))'
}
before=$(versions) || exit 1
start=$(date +%s)
"$py" -m pytest -p no:cacheprovider "$@"
status=$?
case $status in  # pytest's exit codes
  0) result=passed ;;
  1) result="FAILED (tests failed)" ;;
  2) result="FAILED (interrupted)" ;;
  5) result="FAILED (no tests collected)" ;;
  *) result="FAILED (pytest exit code $status: internal or usage error)" ;;
esac
after=$(versions)
if [ "$before" != "$after" ]; then
  echo "error: $name: running the lectures changed the installed packages (a setup cell reinstalled them):" >&2
  echo "  before: $before" >&2
  echo "  after:  $after" >&2
  result="FAILED (a setup cell changed jax)"
  status=1
fi
line="$name: $after: $result in $(( $(date +%s) - start )) s"
[ -n "${ENV_SUMMARY:-}" ] && echo "$line" >> "$ENV_SUMMARY"
echo "$line"
exit "$status"
