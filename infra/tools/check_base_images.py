#!/usr/bin/env python3
"""Checks infra/docker/base-images.lock against the Dockerfiles (called by infra/check.sh).

  check_base_images.py LOCK DOCKERFILE...

The lock names the same images (repository and tag) as the Dockerfiles' ARG defaults; each digest is empty (not pinned
yet: infra/docker/build.sh refuses a release build) or a sha256 digest; a pinned runtime image records its OS.
The last line says whether the images are pinned. Exits 1 on an inconsistency. Python 3.8+, standard library only.
"""
import re
import sys

failures = 0


def report(ok, what):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL  {what}")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    lock = {}
    for line in open(argv[0], encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            lock[key] = value.strip('"')
    for key in ("SDK_IMAGE", "SDK_IMAGE_DIGEST", "FUNCTIONS_IMAGE", "FUNCTIONS_IMAGE_DIGEST", "FUNCTIONS_IMAGE_OS", "PINNED_ON"):
        report(key in lock, f"{argv[0]} lacks {key}")
    for dockerfile in argv[1:]:
        text = open(dockerfile, encoding="utf-8").read()
        for key in ("SDK_IMAGE", "FUNCTIONS_IMAGE"):
            match = re.search(rf"^ARG {key}=(\S+)$", text, re.M)
            report(match is not None and match.group(1) == lock.get(key),
                   f"{dockerfile}: ARG {key} default {match.group(1) if match else '(none)'} is not the lock's {lock.get(key)}")
    digests = {key: lock.get(f"{key}_DIGEST", "") for key in ("SDK_IMAGE", "FUNCTIONS_IMAGE")}
    for key, digest in digests.items():
        report(digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest) is not None, f"{key}_DIGEST '{digest}' is not a sha256 digest")
    pinned = all(digests.values())
    report(not any(digests.values()) or pinned, "pin both base images or neither")
    if pinned:
        report(bool(lock.get("FUNCTIONS_IMAGE_OS")) and bool(lock.get("PINNED_ON")), "a pinned lock records FUNCTIONS_IMAGE_OS and PINNED_ON")
    if failures:
        return 1
    if pinned:
        print(f"2 base images pinned by digest on {lock['PINNED_ON']}; runtime OS {lock['FUNCTIONS_IMAGE_OS']}")
    else:
        print("the lock names the Dockerfiles' images; NOT pinned yet: run infra/docker/pin-base-images.sh where mcr.microsoft.com is reachable (build.sh refuses release builds until then)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
