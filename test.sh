#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the .NET 10 SDK. It installs the
# real SMTP peers the tests talk to (swaks, msmtp, Postfix's smtp-sink and smtp-source, Python's
# aiosmtpd, dnsmasq) when they are missing, then runs dotnet test.
set -euo pipefail
cd "$(dirname "$0")"

# package:file that shows it is installed
required=(
  swaks:/usr/bin/swaks
  msmtp:/usr/bin/msmtp
  neomutt:/usr/bin/neomutt
  postfix:/usr/sbin/smtp-sink
  python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd/__init__.py
  dnsmasq-base:/usr/sbin/dnsmasq
)
missing=()
for entry in "${required[@]}"; do
  [ -e "${entry#*:}" ] || missing+=("${entry%%:*}")
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
