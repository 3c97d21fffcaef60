#!/usr/bin/env bash
# Offline validation of infra/: lint the SAM template (cfn-lint and `sam validate --lint`),
# translate it to plain CloudFormation with the SAM translator, lint that too, then run the
# template tests (tests/infra) with the project's virtualenv. Nothing here talks to AWS.
#
#   infra/check.sh              everything
#   infra/check.sh --no-tests   the linters and the translation only
#
# The tools live in their own virtualenv (.venv-tools, or $WAITINGROOM_TOOLS_VENV), created on
# first use from infra/requirements/tools.txt, because aws-sam-cli pins versions that clash with
# the project's own dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${WAITINGROOM_TOOLS_VENV:-$ROOT/.venv-tools}"
MAIN_PYTHON="${MAIN_PYTHON:-$ROOT/.venv/bin/python}"
TEMPLATE="$ROOT/infra/template.yaml"
run_tests=1

for arg in "$@"; do
  case "$arg" in
    --no-tests) run_tests=0 ;;
    -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }

# No telemetry, no credentials, a fixed region: the tools must not need AWS.
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE

if ! [ -x "$TOOLS/bin/sam" ] || ! [ -x "$TOOLS/bin/cfn-lint" ] ||
  ! "$TOOLS/bin/python" -c "import samtranslator, cfnlint, boto3" 2>/dev/null; then
  step "creating the tools virtualenv in $TOOLS"
  "${PYTHON:-python3}" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/infra/requirements/tools.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "cfn-lint infra/template.yaml"
"$TOOLS/bin/cfn-lint" -- "$TEMPLATE"

step "sam validate --lint"
"$TOOLS/bin/sam" validate --lint --template "$TEMPLATE"

step "translate to CloudFormation (aws-sam-translator, offline)"
"$TOOLS/bin/python" "$ROOT/infra/translate.py" "$TEMPLATE" -o "$work/translated.json"
echo "$(grep -c '"Type": "AWS::' "$work/translated.json") resources"

step "cfn-lint on the translated template"
"$TOOLS/bin/cfn-lint" -- "$work/translated.json"

if [ "$run_tests" = 1 ]; then
  step "template tests (tests/infra)"
  if ! [ -x "$MAIN_PYTHON" ]; then
    echo "$MAIN_PYTHON is missing: create the project virtualenv first (make test does)" >&2
    exit 1
  fi
  cd "$ROOT"
  WAITINGROOM_TOOLS_VENV="$TOOLS" "$MAIN_PYTHON" -m pytest tests/infra -q
fi

step "infra: all checks passed"
