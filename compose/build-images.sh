#!/usr/bin/env bash
# Builds tierserve's image on the local Docker engine, with no registry.
#
#   compose/build-images.sh                 # local base image made from this machine's Python
#   compose/build-images.sh --base python:3.11-slim   # production: a public base (needs a registry)
#   compose/build-images.sh --rebuild-base  # remake the local base (after dependency changes)
#
# The local base image is imported (`docker import`) from a tarball holding this machine's
# Python runtime, the project's virtual environment (every dependency, at /opt/venv) and the
# shared libraries they link against. It is not portable to other machines: it exists so the
# production Dockerfile can be built and run where no image can be pulled.
#
# Environment: TIERSERVE_IMAGE (default tierserve:latest), TIERSERVE_BASE_IMAGE
# (default tierserve-base:local), VENV (default <repo>/.venv).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${TIERSERVE_IMAGE:-tierserve:latest}"
LOCAL_BASE="${TIERSERVE_BASE_IMAGE:-tierserve-base:local}"
VENV="${VENV:-$REPO/.venv}"
base=""
rebuild_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    --image) IMAGE="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! timeout 10 docker info >/dev/null 2>&1; then
  bash "$REPO/scripts/ensure-dockerd.sh"
fi

# Every file a shared object or executable needs, listed as the loader finds it and as its
# real path, with directories canonical (/lib is a symlink to usr/lib on merged-/usr hosts).
shared_libs() {
  xargs -r ldd 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u |
    while read -r lib; do
      echo "$(realpath "$(dirname "$lib")")/$(basename "$lib")"
      realpath "$lib"
    done | sort -u
}

TOOLS=()
for tool in sh dash mkdir rm cat ls env sleep chmod cp mv ln true false test id echo; do
  TOOLS+=("$(command -v "$tool" 2>/dev/null | grep '^/' || true)")
done
mapfile -t TOOLS < <(printf '%s\n' "${TOOLS[@]}" | grep . | xargs -r realpath -s | sort -u)

build_local_base() {
  local python_home venv_real stage list
  python_home="$(cd "$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')" && pwd -P)"
  venv_real="$(cd "$VENV" && pwd -P)"
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/etc" "$stage/tmp" "$stage/data"
  chmod 1777 "$stage/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' \
    >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$stage/etc/nsswitch.conf"

  list="$stage/files"
  {
    # The interpreter, without its own site-packages (the venv holds every dependency).
    find "$python_home" \( -path "$python_home/lib/python3*/site-packages/*" \
      -o -path "$python_home/lib/python3*/test/*" \) -prune -o -print
    # The venv, without the editable install of this checkout (the image installs its own copy).
    find "$venv_real" \( -name '__editable__*' -o -name 'tierserve-*.dist-info' \) -prune \
      -o -print
    # A shell and the basic tools for RUN steps, and every library anything here links against.
    printf '%s\n' "${TOOLS[@]}"
    { echo "$python_home/bin/python3"; printf '%s\n' "${TOOLS[@]}"
      find "$python_home/lib" "$venv_real" -name '*.so*' -type f; } | shared_libs
  } | sed 's|^/||' | sort -u >"$list"
  for link in bin lib lib64 sbin; do
    [ -L "/$link" ] && echo "$link" >>"$list"
  done

  echo "importing $LOCAL_BASE from $python_home and $venv_real ($(wc -l <"$list") entries)" >&2
  tar -c --no-recursion -C / -T "$list" \
      --transform "s|^${venv_real#/}|opt/venv|S" \
      -C "$stage" etc tmp data 2>/dev/null |
    docker import \
      --change "ENV PATH=/opt/venv/bin:$python_home/bin:/usr/local/bin:/usr/bin:/bin" \
      --change "ENV LANG=C.UTF-8" \
      --change 'CMD ["python3"]' \
      --change "LABEL tierserve.deps=$(deps_digest)" \
      - "$LOCAL_BASE" >/dev/null
  docker run --rm "$LOCAL_BASE" python -c "import tensorflow, fastapi, boto3, moto" \
    || { echo "the local base image cannot import the dependencies" >&2; exit 1; }
}

# Which distributions the venv holds: a base made from another set is stale.
deps_digest() {
  ls "$VENV"/lib/python3*/site-packages | grep -E '\.dist-info$' | grep -v '^tierserve-' |
    sha256sum | cut -c1-16
}

pip_args=""
if [ -z "$base" ]; then
  base="$LOCAL_BASE"
  have="$(docker image inspect -f '{{ index .Config.Labels "tierserve.deps" }}' "$LOCAL_BASE" \
    2>/dev/null || true)"
  if [ "$rebuild_base" = 1 ] || [ "$have" != "$(deps_digest)" ]; then
    old_base="$(docker image inspect -f '{{.Id}}' "$LOCAL_BASE" 2>/dev/null || true)"
    build_local_base
  fi
  # Everything is in the base already; nothing to fetch from an index.
  pip_args="--no-deps --no-index --no-build-isolation"
fi

# The context is only what the image needs (never .venv), streamed as a tarball.
old_image="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
cd "$REPO"
tar -c --exclude=__pycache__ --exclude='*.pyc' \
    compose/Dockerfile pyproject.toml README.md base tierserve router pools policies orchestrator db |
  docker build -q -f compose/Dockerfile --build-arg "BASE_IMAGE=$base" \
    --build-arg "PIP_INSTALL_ARGS=$pip_args" -t "$IMAGE" - >/dev/null
# Images this build replaced would otherwise pile up untagged (gigabytes each); one still in
# use by another image or container stays.
for old in "$old_image" "${old_base:-}"; do
  if [ -n "$old" ] && [ -z "$(docker image inspect -f '{{.RepoTags}}' "$old" 2>/dev/null |
      tr -d '[]')" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
done
echo "$IMAGE"
