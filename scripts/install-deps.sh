#!/usr/bin/env bash
# Installs every Debian package podflow needs to build, test and benchmark; a no-op when all are present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libboost1.81-dev libboost-system1.81-dev libboost-url1.81-dev
  libyaml-cpp-dev libssl-dev libsqlite3-dev sqlite3 doctest-dev
  libhowardhinnant-date-dev tzdata nlohmann-json3-dev libcli11-dev
  python3 python3-croniter python3-venv python3-graphql-core python3-jsonschema python3-numpy
  ca-certificates
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
