#!/bin/sh
# Builds the Warden OCI image without pulling anything: a static warden
# binary (CGO_ENABLED=0) in an empty (FROM scratch) image, run as uid 65532.
# Usage: deploy/image/build.sh [IMAGE] (default localhost/warden:latest).
# Needs Debian's buildah (`make image` installs it when missing, as root).
set -eu
image=${1:-localhost/warden:latest}
version=${VERSION:-dev}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags "-s -w -X main.version=$version" -o "$work/warden" ./cmd/warden
# Scratch has no /tmp and no /etc/passwd: give it the few files a Go
# program and an operator expect (hooks run /bin/sh, which scratch lacks:
# use webhooks, or build FROM a distribution image instead).
mkdir -p "$work/rootfs/tmp" "$work/rootfs/etc" "$work/rootfs/var/lib/warden"
printf 'root:x:0:0:root:/:/sbin/nologin\nwarden:x:65532:65532:warden:/var/lib/warden:/sbin/nologin\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nwarden:x:65532:\n' > "$work/rootfs/etc/group"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
buildah copy --chmod 0755 "$ctr" "$work/warden" /warden >/dev/null
buildah copy "$ctr" "$work/rootfs/" / >/dev/null
buildah copy --chown 65532:65532 "$ctr" "$work/rootfs/var/lib/warden" /var/lib/warden >/dev/null
buildah copy --chmod 1777 "$ctr" "$work/rootfs/tmp" /tmp >/dev/null
buildah config --user 65532:65532 --workingdir /var/lib/warden \
  --entrypoint '["/warden"]' --cmd '["server", "--config", "/etc/warden/warden.yaml"]' \
  --port 3000/tcp --port 7000/tcp --port 7946/tcp --port 7946/udp --volume /var/lib/warden \
  --env WARDEN_DATA_DIR=/var/lib/warden \
  --label org.opencontainers.image.title=warden --label org.opencontainers.image.version="$version" "$ctr"
buildah commit --rm "$ctr" "$image" >/dev/null
trap 'rm -rf "$work"' EXIT
echo "$image"
