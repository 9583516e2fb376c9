#!/usr/bin/env bash
# Re-vendors the page's JavaScript libraries from the npm registry at the
# pinned versions below (edit them to update), so `cargo build` never needs
# node and the page needs no network. Run from anywhere; needs npm and tar.
set -euo pipefail
SPARK_VERSION=2.2.0
THREE_VERSION=0.180.0 # Spark 2.2 needs three >= 0.180
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@sparkjsdev/spark@$SPARK_VERSION" "three@$THREE_VERSION" >/dev/null
mkdir spark three
tar xzf sparkjsdev-spark-$SPARK_VERSION.tgz -C spark
tar xzf three-$THREE_VERSION.tgz -C three
out="$here/vendor"
rm -rf "$out" && mkdir -p "$out"
# drop the source-map comment: the maps are not vendored
sed '/^\/\/# sourceMappingURL=/d' spark/package/dist/spark.module.min.js >"$out/spark.module.min.js"
cp three/package/build/three.module.min.js three/package/build/three.core.min.js "$out/"
# the one three.js addon Spark imports (as three/addons/postprocessing/Pass.js)
mkdir -p "$out/addons/postprocessing"
cp three/package/examples/jsm/postprocessing/Pass.js "$out/addons/postprocessing/"
cp spark/package/LICENSE "$out/LICENSE-spark"
cp three/package/LICENSE "$out/LICENSE-three"
printf '@sparkjsdev/spark %s (MIT)\nthree %s (MIT)\n' "$SPARK_VERSION" "$THREE_VERSION" >"$out/VERSIONS"
echo "vendored into $out:"
ls -la "$out"
