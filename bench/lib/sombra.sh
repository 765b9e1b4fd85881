# Sombra built in Release and run with a fresh DataDirectory per run. Sourced by bench/run.

# sombra_publish REPO OUT: builds the relay as an operator would run it.
sombra_publish() {
  dotnet publish "$1/src/Sombra" -c Release -o "$2" --nologo -v quiet > "$2.log" 2>&1 \
    || { cat "$2.log" >&2; fail "dotnet publish failed"; }
}

# sombra_start BIN DIR PORT SINKPORT: block mode, 127.0.0.1 trusted, the sink as smarthost.
# The connection caps are raised for the idle-connection scenario; the rest are the defaults.
sombra_start() {
  local bin=$1 dir=$2 port=$3 sink_port=$4
  mkdir -p "$dir"
  cat > "$dir/sombra.json" <<JSON
{
  "HostName": "sombra.bench",
  "DataDirectory": "$dir/data",
  "LogLevel": "Warning",
  "Submission": {
    "Endpoints": [ { "Address": "127.0.0.1:$port", "Tls": "none" } ],
    "TrustedNetworks": [ "127.0.0.1/32" ],
    "MaxMessageSize": 209715200,
    "MaxConnections": 10000,
    "MaxConnectionsPerClient": 10000
  },
  "Anonymity": { "Mode": "block" },
  "Delivery": { "Smarthost": "127.0.0.1:$sink_port", "SmarthostTls": "none" }
}
JSON
  "$bin/sombra" serve --config "$dir/sombra.json" > "$dir/sombra.log" 2>&1 &
  SOMBRA_PID=$!
  track "$SOMBRA_PID"
  wait_port "$port" || fail "Sombra does not listen on $port, see $dir/sombra.log"
}

# sombra_stop: SIGTERM lets it end its sessions the documented way; stop_pids kills it if not.
sombra_stop() {
  stop_pids "$SOMBRA_PID"
  SOMBRA_PID=
}
