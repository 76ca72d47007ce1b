#!/usr/bin/env bash
# Install what the test suite needs from the operating system's packages when it is missing:
# a Java 17 JDK and Maven (the local Kafka broker; javac compiles the FHIR validator's runner),
# PostgreSQL (the submission ledger's database), promtool (checks and tests the alert rules; Debian
# ships it in `prometheus`), chromium and its driver (the console's browser test, through Selenium).
# Runs in CI (as root, Debian); on a developer's machine it only reports what is missing.
set -euo pipefail

missing=()
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${CI:-}" = "" ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-tools: missing OS packages: ${missing[*]} (install them; CI installs them itself)" >&2
  exit 0
fi
echo "ensure-tools: installing ${missing[*]} from the OS packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a cluster of its own; the tests start a throwaway one instead.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
  for conf in /etc/postgresql/*/main; do
    [ -d "$conf" ] || continue
    version=$(basename "$(dirname "$conf")")
    pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
  done
fi
# Likewise the Prometheus server the package may start: only promtool is wanted.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -x /etc/init.d/prometheus ]; then
  /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
