#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the .NET 10 SDK. It installs the
# real SMTP peers the tests talk to (swaks, msmtp, NeoMutt, Postfix's smtp-sink and smtp-source,
# Python's aiosmtpd, dnsmasq) when they are missing, then runs dotnet test.
set -euo pipefail
cd "$(dirname "$0")"

required=(
  swaks
  # swaks only recommends its TLS modules, and the install below skips recommendations
  libnet-ssleay-perl
  libio-socket-ssl-perl
  msmtp
  neomutt
  postfix
  python3-aiosmtpd
  dnsmasq-base
)
missing=()
for package in "${required[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how to configure itself; its smtp-sink and smtp-source need no configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

dotnet test tests/Sombra.Tests/Sombra.Tests.csproj "$@"
