#!/usr/bin/env bash
# Container HEALTHCHECK for the Functions images: GET /api/health/ready (readiness: store, models, device) on the
# local port must answer 200 within the timeout. Plain bash (/dev/tcp), because the Functions base image has neither
# curl nor wget and the runtime image should not grow a package manager step just for this. The Container Apps probes
# (infra/modules/functionApp.bicep) use their own endpoints; this one serves `docker run` and Compose.
set -euo pipefail
port="${HEALTHCHECK_PORT:-80}"
path="${HEALTHCHECK_PATH:-/api/health/ready}"
timeout_s="${HEALTHCHECK_TIMEOUT:-8}"

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t "$timeout_s" status <&3
exec 3<&- 3>&-
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) echo "unhealthy: ${status:-no response}" >&2; exit 1 ;;
esac
