#!/usr/bin/env bash
# `krea mcp --sim --http` driven by the MCP Inspector's command line (a client this project did
# not write): the tools are listed and an image is made with the bearer token; without it the
# Inspector is refused. Usage: scripts/mcp_inspector_check.sh PATH/TO/krea PATH/TO/mcp-inspector
set -euo pipefail
krea=$1
inspector=$2
scratch=$(mktemp -d)
token="inspector-token-0123456789"
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

HOME=$scratch XDG_STATE_HOME=$scratch/state XDG_CACHE_HOME=$scratch/cache \
    XDG_CONFIG_HOME=$scratch/config KREA_MCP_TOKEN=$token \
    "$krea" --sim mcp --http 127.0.0.1:0 --output-dir "$scratch/out" 2>"$scratch/server.log" &
server=$!
url=
for _ in $(seq 600); do
    url=$(sed -n 's/^krea mcp: serving //p' "$scratch/server.log")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "mcp inspector: no URL from krea mcp --http"; cat "$scratch/server.log"; exit 1; }

inspect() { HOME=$scratch "$inspector" --cli "$url" "$@"; }

inspect --header "Authorization: Bearer $token" --method tools/list >"$scratch/tools.json"
python3 - "$scratch/tools.json" <<'EOF'
import json, sys
tools = json.load(open(sys.argv[1]))["tools"]
assert len(tools) == 15, f"{len(tools)} tools"
assert all(t.get("title") and t.get("annotations") for t in tools), "titles and annotations"
EOF

inspect --header "Authorization: Bearer $token" --method tools/call \
    --tool-name generate_image --tool-arg "prompt=a fox in the snow" model=flux >"$scratch/image.json"
python3 - "$scratch/image.json" <<'EOF'
import json, os, sys
result = json.load(open(sys.argv[1]))
s = result["structuredContent"]
assert s["status"] == "completed", s
assert os.path.isfile(s["files"][0]), s["files"]
assert s["simulated"] is True
EOF

if inspect --method tools/list >"$scratch/refused.json" 2>&1; then
    echo "mcp inspector: a client without the token was served"; cat "$scratch/refused.json"; exit 1
fi
grep -q '"error"' "$scratch/refused.json" || { cat "$scratch/refused.json"; exit 1; }

kill -TERM "$server"
wait "$server" || { echo "mcp inspector: krea mcp --http did not stop cleanly"; exit 1; }
server=
echo "mcp inspector: 15 tools and an image over Streamable HTTP with the token; refused without it: ok"
