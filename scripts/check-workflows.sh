#!/usr/bin/env bash
# Validate the GitHub Actions workflows against check-jsonschema's built-in (vendored, offline)
# GitHub workflow schema. Called by .ci/run; a broken workflow fails the build here.
set -euo pipefail
cd "$(dirname "$0")/.."

checker="$(command -v check-jsonschema || true)"
if [ -z "$checker" ] && [ -x /work/venv/bin/check-jsonschema ]; then
  checker=/work/venv/bin/check-jsonschema
fi
if [ -z "$checker" ]; then
  echo "check-jsonschema not found: pip install -e '.[test]'" >&2
  exit 1
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "no workflows under .github/workflows" >&2
  exit 1
fi
"$checker" --builtin-schema vendor.github-workflows "${workflows[@]}"
