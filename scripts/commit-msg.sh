#!/usr/bin/env bash
# Checks commit messages against the project's habit (docs/contributing.md): a subject of at
# most 72 characters, a blank line, then a body that says why. Merge commits and git's fixup!/
# squash! commits are exempt.
#
#   bash scripts/commit-msg.sh FILE            one message (git's commit-msg hook calls it so:
#                                              ln -s ../../scripts/commit-msg.sh .git/hooks/commit-msg)
#   bash scripts/commit-msg.sh --range A..B    every commit in a range, e.g. main..HEAD
set -uo pipefail

# check NAME < message: prints what is wrong, returns 1 if anything is.
check() {
  local name=$1 text subject second body
  # git strips '#' comment lines and trailing blank lines from a message being written
  text=$(grep -v '^#' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')
  subject=$(head -n1 <<<"$text")
  second=$(sed -n 2p <<<"$text")
  body=$(tail -n +3 <<<"$text" | grep -c '[^[:space:]]')
  case "$subject" in Merge\ *|fixup!\ *|squash!\ *|amend!\ *) return 0 ;; esac
  local bad=0
  if [[ -z "${subject//[[:space:]]/}" ]]; then
    echo "$name: the subject line is empty"; bad=1
  elif ((${#subject} > 72)); then
    echo "$name: the subject has ${#subject} characters, at most 72: $subject"; bad=1
  fi
  if [[ -n "$second" ]]; then
    echo "$name: the subject must be followed by a blank line"; bad=1
  elif ((body == 0)); then
    echo "$name: no body: say why the change is made, after a blank line"; bad=1
  fi
  return $bad
}

if [[ ${1:-} == --range ]]; then
  [[ $# -eq 2 ]] || { echo "usage: bash scripts/commit-msg.sh --range A..B" >&2; exit 2; }
  status=0
  while read -r sha; do
    git log -1 --format=%B "$sha" | check "${sha:0:10}" || status=1
  done < <(git rev-list --no-merges "$2")
  exit $status
fi
[[ $# -eq 1 && -f $1 ]] || { echo "usage: bash scripts/commit-msg.sh FILE | --range A..B" >&2; exit 2; }
check "$1" <"$1"
