#!/bin/sh
# mailhook stack: build Postfix's configuration, then run Postfix in the foreground.
#
# Order (a later setting wins):
#   1. postfix/main.cf.fragment and master.cf.fragment from the repository (LMTP to mailhook)
#   2. docker/postfix/main.cf.stack and master.cf.stack (MX, submission, SASL, TLS policy)
#   3. values from the environment (.env): MAIL_HOSTNAME, AGENT_DOMAIN, MAILBOX_DOMAINS,
#      LMTP_NEXTHOPS (one or more "[host]:port" next-hops, tried in order).
#
# POSTFIX_CONFIG_DIR (default /etc/postfix) and FRAGMENTS_DIR (default /etc/mailhook/postfix)
# let tests/integration/deploy/test_postfix_config.py run it outside a container;
# POSTFIX_DRY_RUN=1 stops after writing the configuration.
set -eu

conf="${POSTFIX_CONFIG_DIR:-/etc/postfix}"
fragments="${FRAGMENTS_DIR:-/etc/mailhook/postfix}"
: "${MAIL_HOSTNAME:?set MAIL_HOSTNAME (the MX host name, e.g. mail.example.com)}"
: "${AGENT_DOMAIN:?set AGENT_DOMAIN (the domain of mailhook agent mailboxes)}"
mailbox_domains="${MAILBOX_DOMAINS:-}"
nexthops="${LMTP_NEXTHOPS:-[mailhook]:8024}"
tls_dir="${TLS_DIR:-/etc/letsencrypt/live/$MAIL_HOSTNAME}"

# "name = value" lines of a main.cf-style file, comments and blank lines dropped.
apply_main() {
    sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$1" | while IFS= read -r setting; do
        postconf -c "$conf" -e "$setting"
    done
}

# Active entries of a master.cf fragment ("service type private unpriv chroot wakeup maxproc cmd").
apply_master_fragment() {
    sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e '/^[[:space:]]/d' "$1" | while IFS= read -r entry; do
        set -- $entry
        postconf -c "$conf" -M "$1/$2=$entry"
    done
}

# "service/type = entry" and "service/type/name = value" lines (see master.cf.stack).
apply_master_stack() {
    sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$1" | while IFS= read -r line; do
        key="${line%% = *}"
        value="${line#* = }"
        case "$key" in
            */*/*) postconf -c "$conf" -P "$key=$value" ;;
            *) postconf -c "$conf" -M "$key=$value" ;;
        esac
    done
}

apply_main "$fragments/main.cf.fragment"
apply_master_fragment "$fragments/master.cf.fragment"
apply_main "$fragments/main.cf.stack"
apply_master_stack "$fragments/master.cf.stack"

# Transport: the agent domain to mailhook (several nodes: only the first next-hop carries
# "inet:", see postfix/README.md), each mailbox domain to Dovecot's LMTP.
first="${nexthops%% *}"
rest="${nexthops#"$first"}"
{
    echo "$AGENT_DOMAIN lmtp:inet:$first$rest"
    for domain in $mailbox_domains; do
        echo "$domain lmtp:inet:[dovecot]:24"
    done
} > "$conf/mailhook_transport"

postconf -c "$conf" -e \
    "myhostname = $MAIL_HOSTNAME" \
    "relay_domains = $AGENT_DOMAIN $mailbox_domains" \
    "transport_maps = texthash:$conf/mailhook_transport" \
    "smtpd_tls_chain_files = $tls_dir/privkey.pem, $tls_dir/fullchain.pem"

if [ "${POSTFIX_DRY_RUN:-0}" = 1 ]; then
    exit 0
fi
postfix -c "$conf" check
exec postfix -c "$conf" start-fg
