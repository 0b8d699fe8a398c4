#!/usr/bin/env bash
# Release build of the Functions image on the base images pinned in infra/docker/base-images.lock:
#
#   infra/docker/build.sh gpu|cpu IMAGE [--acr REGISTRY] [--unpinned]
#
#   IMAGE       the reference to tag, for example myregistry.azurecr.io/wuerstchen-functions:gpu-$(git rev-parse --short HEAD)
#   --acr NAME  build in the registry with ACR Tasks (az acr build) instead of the local Docker, and push there
#   --unpinned  build on the tags instead of the digests (local experiments only; never deploy such an image)
#
# Prints the digest to deploy (WUERSTCHEN_IMAGE=IMAGE@sha256:...) and, for a local build, the OS the image reports.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "build: error: $*" >&2; exit 1; }
[ $# -ge 2 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
kind=$1 image=$2
shift 2
acr="" unpinned=0
while [ $# -gt 0 ]; do
  case "$1" in
    --acr) acr=${2:?--acr needs a registry name}; shift 2 ;;
    --unpinned) unpinned=1; shift ;;
    *) fail "unknown option $1" ;;
  esac
done
case "$kind" in gpu|cpu) ;; *) fail "the first argument is gpu or cpu, not '$kind'" ;; esac

# shellcheck source=base-images.lock
. infra/docker/base-images.lock
if [ -n "$SDK_IMAGE_DIGEST" ] && [ -n "$FUNCTIONS_IMAGE_DIGEST" ]; then
  sdk="${SDK_IMAGE%%:*}@$SDK_IMAGE_DIGEST" functions="${FUNCTIONS_IMAGE%%:*}@$FUNCTIONS_IMAGE_DIGEST"
  echo "build: base images pinned on $PINNED_ON ($FUNCTIONS_IMAGE_OS)"
elif [ "$unpinned" = 1 ]; then
  sdk=$SDK_IMAGE functions=$FUNCTIONS_IMAGE
  echo "build: WARNING: base images by tag (--unpinned): for local experiments only" >&2
else
  fail "infra/docker/base-images.lock pins no digests yet: run infra/docker/pin-base-images.sh (needs mcr.microsoft.com) and commit the lock file"
fi

args=(--build-arg "SDK_IMAGE=$sdk" --build-arg "FUNCTIONS_IMAGE=$functions" -f "infra/docker/Dockerfile.$kind")
if [ -n "$acr" ]; then
  # The CUDA restore makes the GPU build long; ACR Tasks allow up to 8 hours.
  az acr build -r "$acr" -t "${image#*/}" --platform linux/amd64 --timeout 7200 "${args[@]}" .
  digest=$(az acr repository show -n "$acr" --image "${image#*/}" --query digest -o tsv)
else
  docker build --platform linux/amd64 -t "$image" "${args[@]}" .
  echo "build: the image reports: $(docker run --rm --entrypoint sh "$image" -c '. /etc/os-release && echo "$PRETTY_NAME"')"
  docker push "$image"
  digest=$(docker inspect --format '{{index .RepoDigests 0}}' "$image")
  digest=${digest#*@}
fi
echo "build: deploy it with WUERSTCHEN_IMAGE=${image%:*}@$digest"
