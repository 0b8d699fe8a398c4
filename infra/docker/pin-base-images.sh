#!/usr/bin/env bash
# Pins the base images of infra/docker/base-images.lock to the digests their tags point at now, and records the OS the
# runtime image reports. Needs curl and mcr.microsoft.com (anonymous pulls need no token); Docker, when present, also
# reads the runtime image's /etc/os-release. Review the diff and commit the lock file; then rebuild and redeploy.
#
#   infra/docker/pin-base-images.sh
set -euo pipefail
cd "$(dirname "$0")"
lock=base-images.lock
command -v curl >/dev/null || { echo "pin: curl is not on PATH" >&2; exit 1; }
# shellcheck source=base-images.lock
. "./$lock"

accept='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
digest_of() { # REGISTRY/REPOSITORY:TAG
  local ref=$1 registry repository tag
  registry=${ref%%/*}; repository=${ref#*/}; tag=${repository##*:}; repository=${repository%:*}
  curl -fsSI -H "Accept: $accept" "https://$registry/v2/$repository/manifests/$tag" \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

sdk_digest=$(digest_of "$SDK_IMAGE")
functions_digest=$(digest_of "$FUNCTIONS_IMAGE")
for d in "$sdk_digest" "$functions_digest"; do
  [[ "$d" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin: could not resolve a digest (got '$d')" >&2; exit 1; }
done
os="not read (no Docker here); .NET 10 images are Ubuntu 24.04"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  os=$(docker run --rm --platform linux/amd64 --entrypoint sh "${FUNCTIONS_IMAGE%%:*}@$functions_digest" -c '. /etc/os-release && echo "$PRETTY_NAME"')
fi
sed -i \
  -e "s|^SDK_IMAGE_DIGEST=.*|SDK_IMAGE_DIGEST=$sdk_digest|" \
  -e "s|^FUNCTIONS_IMAGE_DIGEST=.*|FUNCTIONS_IMAGE_DIGEST=$functions_digest|" \
  -e "s|^FUNCTIONS_IMAGE_OS=.*|FUNCTIONS_IMAGE_OS=\"$os\"|" \
  -e "s|^PINNED_ON=.*|PINNED_ON=$(date -u +%Y-%m-%d)|" "$lock"
echo "pin: $SDK_IMAGE -> $sdk_digest"
echo "pin: $FUNCTIONS_IMAGE -> $functions_digest ($os)"
echo "pin: review and commit infra/docker/$lock, then rebuild (infra/docker/build.sh) and redeploy"
