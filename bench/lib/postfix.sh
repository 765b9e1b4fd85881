# A private Postfix instance configured as "Postfix as an anonymizing relay": relays everything
# from 127.0.0.1 to the sink, and header_checks drop the headers that name the sender's machine.
# Sourced by bench/run.

# postfix_configure DIR PORT SINKPORT: writes main.cf, master.cf and header_checks into DIR.
postfix_configure() {
  local dir=$1 port=$2 sink_port=$3
  mkdir -p "$dir/queue" "$dir/data"
  # The data directory holds Postfix's caches and must belong to its mail owner.
  chown postfix "$dir/data"
  cat > "$dir/header_checks" <<'CHECKS'
/^Received:/ IGNORE
/^X-Originating-IP:/ IGNORE
/^User-Agent:/ IGNORE
/^X-Mailer:/ IGNORE
CHECKS
  cat > "$dir/main.cf" <<MAIN
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$sink_port
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
header_checks = regexp:$dir/header_checks
message_size_limit = 209715200
smtp_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = /dev/stdout
MAIN
  # Debian's master.cf less the chroot (the queue is not under /var/spool/postfix), and smtpd
  # on the bench port only.
  cat > "$dir/master.cf" <<MASTER
127.0.0.1:$port inet n - n - - smtpd
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
MASTER
}

# postfix_start DIR: starts the master in the foreground mode (start with maillog_file fails
# silently), records its PID in POSTFIX_PID and waits for the smtpd port.
postfix_start() {
  local dir=$1 port=$2
  postfix -c "$dir" start-fg > "$dir/maillog" 2>&1 &
  track $!
  local pidfile=$dir/queue/pid/master.pid
  wait_until 30 "test -s $pidfile" || fail "Postfix did not start, see $dir/maillog"
  POSTFIX_PID=$(tr -d ' \n' < "$pidfile")
  track "$POSTFIX_PID"
  wait_port "$port" || fail "Postfix does not listen on $port, see $dir/maillog"
}

# postfix_stop DIR: stops the instance and then, by PID, whatever of it is left.
postfix_stop() {
  local dir=$1 pids
  pids=$(descendants "$POSTFIX_PID")
  postfix -c "$dir" stop > /dev/null 2>&1 || true
  wait_until 20 "! kill -0 $POSTFIX_PID 2>/dev/null" || true
  stop_pids $POSTFIX_PID $pids
  POSTFIX_PID=
}
