#!/usr/bin/env bash
# Installs what the console's tests need when it is missing: Debian's chromium and the matching
# chromium-driver (the browser tests drive them over WebDriver), fonts-nanum (Korean glyphs) and
# nodejs (`node --test` for the console's modules). Nothing downloads a browser build.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
fc-list 2>/dev/null | grep -qi nanum || missing+=(fonts-nanum)
command -v node >/dev/null || missing+=(nodejs)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "== installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
