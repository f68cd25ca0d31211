#!/usr/bin/env bash
# Builds the tegata container image with podman: a static binary built here
# from the git clone (-buildvcs=true: the image's binary reports its
# version and commit), then deploy/container/Containerfile on a context
# holding only what the image needs. Prints the image name.
#   scripts/image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -buildvcs=true -trimpath -ldflags='-s -w' -o "$ctx/tegata" ./cmd/tegata
tag=${1:-$("$ctx/tegata" version --json | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | tr '+()' '---' | tr -s '-' | sed 's/^-//; s/-$//')}
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
printf 'root:x:0:0:root:/:/sbin/nologin\ntegata:x:65532:65532:tegata:/var/lib/tegata:/sbin/nologin\n' >"$ctx/passwd"
printf 'root:x:0:\ntegata:x:65532:\n' >"$ctx/group"
mkdir "$ctx/data"
podman build --quiet -f deploy/container/Containerfile -t "tegata:$tag" "$ctx" >/dev/null
echo "tegata:$tag"
