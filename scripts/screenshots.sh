#!/usr/bin/env bash
# Writes screenshots of every page of the web app at desktop (1280×900) and phone (390×844) width into docs/images/:
# runs the browser tests (tests/Wuerstchen.Web.Tests) with WUERSTCHEN_SCREENSHOTS pointing there.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-browser.sh
mkdir -p docs/images
WUERSTCHEN_SCREENSHOTS="$PWD/docs/images" dotnet test tests/Wuerstchen.Web.Tests -c Release "$@"
rm -f docs/images/failure-*.png
ls docs/images/*-desktop.png docs/images/*-phone.png
