#!/usr/bin/env bash
# Install the Debian packages that mailhook's integration tests need.
#
#   scripts/system-deps.sh [EXTRA_PACKAGE...]     e.g. scripts/system-deps.sh dovecot-imapd
#
# Always wanted: postfix, postgresql, dovecot-imapd + dovecot-lmtpd (IMAP door and deploy tests),
# chromium (web UI tests with Playwright), swaks (milter tests) and docker-compose (validates
# docker-compose.yml without a Docker engine); extra package names may be
# given as arguments.
# Idempotent: when every package is installed it only runs dpkg-query and exits 0.
# As root it installs what is missing (one apt-get update, then one apt-get install); as any
# other user it names what is missing and exits 1.
#
# The tests start private Postfix and PostgreSQL instances on 127.0.0.1 (tests/harness/), so
# nothing installed here may keep a system-wide service running: Postfix is preseeded with
# "No configuration" (no /etc/postfix/main.cf, no questions), services are kept from starting
# during the install, and a system Postfix that runs anyway is stopped and disabled.
set -euo pipefail

readonly BASE_PACKAGES=(postfix postgresql git dovecot-imapd dovecot-lmtpd chromium swaks docker-compose)
readonly POLICY_RC_D=/usr/sbin/policy-rc.d

log() { printf 'system-deps: %s\n' "$*" >&2; }

is_installed() {
  # "ii " = desired install, status installed. Unknown or removed packages count as missing.
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)" == "ii "* ]]
}

contains() {
  local needle=$1 item
  shift
  for item in "$@"; do [[ "$item" == "$needle" ]] && return 0; done
  return 1
}

block_service_starts() {
  # invoke-rc.d and deb-systemd-invoke do not start services while policy-rc.d exits 101.
  # Docker images often ship such a file already; only a file we created is removed again.
  if [[ -e "$POLICY_RC_D" ]]; then
    return 0
  fi
  printf '#!/bin/sh\n# Written by mailhook scripts/system-deps.sh during apt-get install.\nexit 101\n' \
    >"$POLICY_RC_D"
  chmod 0755 "$POLICY_RC_D"
  trap 'rm -f "$POLICY_RC_D"' EXIT
}

quiesce_system_postfix() {
  # The package's own instance must not listen on port 25: the tests run their own.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    systemctl disable --now postfix.service >/dev/null 2>&1 || true
  fi
  if [[ -f /etc/postfix/main.cf ]] && postfix status >/dev/null 2>&1; then
    log "stopping the system Postfix instance started by the package"
    postfix stop >/dev/null 2>&1 || true
  fi
}

main() {
  local -a wanted=("${BASE_PACKAGES[@]}" "$@") missing=()
  local pkg
  command -v dpkg-query >/dev/null || {
    log "dpkg-query not found: this script supports Debian and Ubuntu only"
    return 1
  }
  for pkg in "${wanted[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi

  if ((EUID != 0)); then
    log "missing Debian packages: ${missing[*]}"
    log "install them as root: sudo $0${*:+ $*}"
    log "  (or: sudo apt-get install --no-install-recommends ${missing[*]})"
    return 1
  fi

  log "installing: ${missing[*]}"
  if contains postfix "${missing[@]}"; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  block_service_starts
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

  if contains postfix "${missing[@]}"; then
    quiesce_system_postfix
  fi
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || {
      log "$pkg is still not installed after apt-get install"
      return 1
    }
  done
  log "done"
}

main "$@"
