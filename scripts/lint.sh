#!/usr/bin/env bash
# `npm run lint`: ESLint (TypeScript and JavaScript), the formatting checks (Prettier for
# TypeScript/JavaScript, clang-format for native/), flake8 (python/, bench/*.py) and a build of the
# API reference with typedoc that must give no warning. Exits non-zero on any finding. `npm run format` (this script with --format) rewrites the files in place instead:
# Prettier and clang-format over every source file, then scripts/formatted.txt lists them all.
#
# The formatting checks cover the files matched by scripts/formatted.txt (git pathspecs, one a
# line): the files already formatted. Until the whole tree has been formatted once, it lists only
# those; `npm run format` formats the rest and completes the list.
set -uo pipefail
cd "$(dirname "$0")/.."

format=0
for arg in "$@"; do
  case "$arg" in
    --format) format=1 ;;
    *) echo "usage: bash scripts/lint.sh [--format]" >&2; exit 2 ;;
  esac
done

# Every source file the formatters own, as git pathspecs.
ALL=(
  ':(glob)lib/**/*.ts'
  ':(glob)test/**/*.js'
  ':(glob)bench/*.js'
  ':(glob)scripts/*.js'
  ':(glob)python/**/*.js'
  'eslint.config.mjs'
  ':(glob)native/**/*.cc'
  ':(glob)native/**/*.h'
  ':(glob)native/**/*.c'
  ':(glob)native/**/*.cu'
  ':(glob)native/**/*.cuh'
)
LIST=scripts/formatted.txt
NATIVE_RE='\.(cc|h|c|cu|cuh)$'
WEB_RE='\.(ts|js|mjs)$'

need() {
  command -v "$1" >/dev/null && return 0
  echo "lint: $1 is missing: $2" >&2
  exit 1
}
need clang-format "bash scripts/setup.sh installs it (Debian's clang-format)"
/usr/bin/python3 -m flake8 --version >/dev/null 2>&1 ||
  { echo "lint: flake8 is missing: bash scripts/setup.sh --python installs it (python3-flake8)" >&2; exit 1; }

# git ls-files over pathspecs: tracked and new files alike, ignored ones never.
files_of() { git ls-files --cached --others --exclude-standard -- "$@" | sort -u; }

if ((format)); then
  mapfile -t files < <(files_of "${ALL[@]}")
  mapfile -t web < <(printf '%s\n' "${files[@]}" | grep -E "$WEB_RE")
  mapfile -t native < <(printf '%s\n' "${files[@]}" | grep -E "$NATIVE_RE")
  npx --no-install prettier --log-level warn --write "${web[@]}" || exit 1
  clang-format -i "${native[@]}" || exit 1
  {
    echo "# Files that npm run lint checks the formatting of (git pathspecs); npm run format wrote it."
    printf '%s\n' "${ALL[@]}"
  } >"$LIST"
  echo "format: ${#web[@]} TypeScript/JavaScript and ${#native[@]} native files formatted; $LIST lists them all"
  exit 0
fi

failed=0
step() {
  local name=$1
  shift
  if "$@"; then echo "lint: $name ok"; else echo "lint: $name FAILED"; failed=1; fi
}

mapfile -t listed < <(grep -vE '^\s*(#|$)' "$LIST")
mapfile -t files < <(files_of "${listed[@]}")
mapfile -t web < <(printf '%s\n' "${files[@]}" | grep -E "$WEB_RE")
mapfile -t native < <(printf '%s\n' "${files[@]}" | grep -E "$NATIVE_RE")

step eslint npx --no-install eslint --max-warnings 0 .
step "prettier (${#web[@]} files)" npx --no-install prettier --check --log-level warn "${web[@]}"
step "clang-format (${#native[@]} files)" clang-format --dry-run --Werror "${native[@]}"
step flake8 /usr/bin/python3 -m flake8 python bench
# The API reference builds from the TSDoc comments with no warning (typedoc.json: every exported
# symbol documented, links resolved); written to a scratch directory, docs/api is `npm run docs`'.
api=$(mktemp -d)
step typedoc npx --no-install typedoc --logLevel Warn --out "$api"
rm -rf "$api"
exit $failed
