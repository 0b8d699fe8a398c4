#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (packages chromium, chromium-driver) when either is missing, for the
# web app's browser tests (tests/Wuerstchen.Web.Tests). Uses sudo when not root. Fails loudly: the tests never skip.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: Chromium is missing and installing it needs root or sudo (apt-get install chromium chromium-driver)." >&2; exit 2; }
  sudo=sudo
fi
echo "Installing chromium and chromium-driver for the browser tests…"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver
command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "error: chromium or chromedriver is still missing after apt-get." >&2; exit 2; }
