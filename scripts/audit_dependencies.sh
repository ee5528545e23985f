#!/usr/bin/env bash
# Dependency audit with pip-audit over the pinned runtime requirements: prints the report and fails
# when a known vulnerability is found. pip-audit lives in its own venv (.venv-audit) so that its
# dependencies never mix with the service's. Packages the vulnerability service cannot look up are
# listed as skipped, not failed (on this machine's restricted network most are skipped); when none
# could be looked up the last line says "not audited", never "no known vulnerabilities".
# PIP_AUDIT names another pip-audit executable (the tests use a stand-in).
set -uo pipefail
cd "$(dirname "$0")/.."
pip_audit=${PIP_AUDIT:-.venv-audit/bin/pip-audit}
if [ -z "${PIP_AUDIT:-}" ] && [ ! -x "$pip_audit" ]; then
  python3 -m venv .venv-audit && .venv-audit/bin/pip install -q pip-audit==2.10.1 >/dev/null 2>&1 \
    || { echo "pip-audit could not be installed; dependency audit skipped"; exit 0; }
fi
json=$(mktemp)
trap 'rm -f "$json"' EXIT
# The JSON report lists every dependency (audited or skipped); stderr carries pip-audit's summary.
report=$(timeout 600 "$pip_audit" -r requirements.txt --progress-spinner off -f json -o "$json" 2>&1)
rc=$?
summary=$(
  python3 - "$json" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as f:
        deps = json.load(f)["dependencies"]
except (OSError, ValueError, KeyError, TypeError):
    print("none")  # pip-audit stopped before writing its report
    sys.exit()
skipped = [d for d in deps if "skip_reason" in d]
audited = [d for d in deps if "skip_reason" not in d]
for dep in audited:
    for vuln in dep.get("vulns", []):
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        print(f"VULN {dep['name']} {dep['version']} {vuln['id']} (fixed in: {fixes})")
if skipped and not audited:
    print(f"WHY e.g. {skipped[0]['skip_reason']}")
print(f"COUNTS {len(deps)} {len(audited)} {len(skipped)}")
EOF
)
# pip-audit's own summary ("No known vulnerabilities found", "Found 2 known vulnerabilities in 1
# package") and any error, without the per-package skip notes.
messages=$(echo "$report" | grep -v "could not be audited" | grep -v "^[[:space:]]*$" | head -40)
counts=$(echo "$summary" | sed -n 's/^COUNTS //p')
if [ -z "$counts" ]; then
  [ -n "$messages" ] && echo "$messages"
  echo "dependency audit: not audited (pip-audit exit $rc before looking up any package)"
else
  read -r total audited skipped <<<"$counts"
  if [ "$audited" -eq 0 ]; then
    # pip-audit says "No known vulnerabilities found" here: true of nothing it looked at.
    others=$(echo "$messages" | grep -v "No known vulnerabilities found")
    [ -n "$others" ] && echo "$others"
    echo "$summary" | sed -n 's/^WHY /  /p'
    echo "dependency audit: not audited: 0 of $total packages could be looked up (exit $rc)"
  else
    [ -n "$messages" ] && echo "$messages"
    echo "$summary" | sed -n 's/^VULN /  /p'
    echo "dependency audit: exit $rc, $audited of $total packages audited, $skipped could not be looked up"
  fi
fi
if [ "$rc" -ne 0 ] && echo "$report" | grep -qiE "Found [0-9]+ known vulnerabilit"; then
  echo "dependency audit FAILED: known vulnerabilities above"
  exit 1
fi
exit 0
