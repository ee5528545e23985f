#!/usr/bin/env bash
# Dependency audit with pip-audit over the pinned runtime requirements: prints the report and fails
# when a known vulnerability is found. pip-audit lives in its own venv (.venv-audit) so that its
# dependencies never mix with the service's. Packages the vulnerability service cannot look up are
# listed as skipped, not failed (on this machine's restricted network most are skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-audit/bin/pip-audit ]; then
  python3 -m venv .venv-audit && .venv-audit/bin/pip install -q pip-audit==2.10.1 >/dev/null 2>&1 \
    || { echo "pip-audit could not be installed; dependency audit skipped"; exit 0; }
fi
report=$(timeout 600 .venv-audit/bin/pip-audit -r requirements.txt --progress-spinner off 2>&1)
rc=$?
echo "$report" | grep -v "could not be audited" | head -40
skipped=$(echo "$report" | grep -c "could not be audited")
echo "dependency audit: exit $rc, $skipped packages could not be looked up"
if [ "$rc" -ne 0 ] && echo "$report" | grep -qiE "Found [0-9]+ known vulnerabilit"; then
  echo "dependency audit FAILED: known vulnerabilities above"
  exit 1
fi
exit 0
