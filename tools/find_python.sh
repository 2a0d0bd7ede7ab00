#!/bin/sh
# Print the path of the newest usable interpreter among the versions given, e.g.
#   tools/find_python.sh 3.13 3.12
# Tries pythonX.Y on PATH first, then pyenv (whose shims hide versions that are not selected).
# Exits 1 with advice on stderr when none is found.
for want in "$@"; do
  if command -v "python$want" >/dev/null 2>&1 && "python$want" -c 'import sys' >/dev/null 2>&1; then
    command -v "python$want"; exit 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv versions --bare 2>/dev/null | grep -E "^$want(\.[0-9]+)?$" | sort -t. -k3,3n | tail -n 1)
    if [ -n "$version" ]; then
      path=$(PYENV_VERSION="$version" pyenv which "python$want" 2>/dev/null) && [ -x "$path" ] && { echo "$path"; exit 0; }
    fi
  fi
done
echo "error: no Python $* found on PATH or in pyenv; install one (e.g. 'pyenv install $1') and try again" >&2
exit 1
