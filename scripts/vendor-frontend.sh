#!/usr/bin/env bash
# Refresh the dashboard's third-party front-end code from the npm registry, at the pinned versions below.
#
# `npm pack` checks each tarball against the registry's sha512 integrity; the files are copied with their
# licences into the package (served by farebox itself: nothing loads from a CDN) and into the browser tests.
# Run by `make vendor`; commit what it changes.
set -euo pipefail

CHARTJS=4.6.2   # the charts: stacked bars with click events, stacked areas, canvas (fast on thousands of points)
AXE=4.14.1      # the accessibility check the browser tests run (tests only, never served)

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "chart.js@$CHARTJS" "axe-core@$AXE" >/dev/null
mkdir chart axe
tar xzf "chart.js-$CHARTJS.tgz" -C chart --strip-components=1
tar xzf "axe-core-$AXE.tgz" -C axe --strip-components=1

static="$root/src/farebox/dashboard/static/vendor"
cp chart/dist/chart.umd.min.js "$static/chart.umd.min.js"
cp chart/LICENSE.md "$static/chart.js-LICENSE.md"
browser="$root/tests/browser/vendor"
mkdir -p "$browser"
cp axe/axe.min.js "$browser/axe.min.js"
cp axe/LICENSE "$browser/axe-core-LICENSE"
printf 'chart.js %s\naxe-core %s\n' "$CHARTJS" "$AXE" > "$static/VERSIONS"
echo "vendored chart.js $CHARTJS and axe-core $AXE"
