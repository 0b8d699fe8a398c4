# Sourced by the scripts that need Azure Storage: installs Azurite from tools/azurite (npm, pinned by its lock
# file) and starts it in memory on the default ports (blob 10000, queue 10001, table 10002), unless one is
# already listening there. Connection string: UseDevelopmentStorage=true.

azurite_pid=""

azurite_install() {
  local dir="$1/tools/azurite"
  if [ ! -x "$dir/node_modules/.bin/azurite" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "Installing Azurite (npm ci in tools/azurite)..."
    npm ci --prefix "$dir" --no-fund --no-audit --loglevel=error >/dev/null
  fi
}

azurite_listening() {
  (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null
}

azurite_start() {
  local log_dir="$1"
  local root
  root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
  # Installed even when another Azurite serves the default ports: the storage tests start their own OAuth one from it.
  azurite_install "$root"
  if azurite_listening; then
    echo "Azurite: something already listens on 127.0.0.1:10000; using it."
    return 0
  fi
  mkdir -p "$log_dir"
  "$root/tools/azurite/node_modules/.bin/azurite" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
    --silent --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 >"$log_dir/azurite.log" 2>&1 &
  azurite_pid=$!
  for _ in $(seq 1 100); do
    if azurite_listening; then
      echo "Azurite started (pid $azurite_pid)."
      return 0
    fi
    if ! kill -0 "$azurite_pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "error: Azurite did not start; its log follows." >&2
  cat "$log_dir/azurite.log" >&2
  return 1
}

azurite_stop() {
  if [ -n "$azurite_pid" ]; then
    kill "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
    azurite_pid=""
  fi
}
