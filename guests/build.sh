#!/usr/bin/env bash
# Builds the example guests into guests/dist/ (a folder git ignores).
#   guests/build.sh            all guests: Rust and Python
#   guests/build.sh redact     only the named ones
# Needs: rustup target wasm32-wasip2 (added here if missing); componentize-py for Python guests
# (scripts/test installs it into .venv).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="$root/guests/dist"
mkdir -p "$dist"
rust_guests=(redact filter-json misbehave identity sql-functions)
python_guests=(enrich sql-text)
# The world each Python guest targets (a Rust guest names its own in `wit_bindgen::generate!`).
python_world() {
  case "$1" in
    enrich) echo transform ;;
    sql-text) echo sql-udf ;;
    *) echo "no world known for Python guest $1" >&2; return 1 ;;
  esac
}
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${rust_guests[@]}" "${python_guests[@]}")

is_in() { local x="$1"; shift; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

rust=()
for g in "${wanted[@]}"; do
  if is_in "$g" "${rust_guests[@]}"; then rust+=("$g");
  elif ! is_in "$g" "${python_guests[@]}"; then echo "unknown guest: $g" >&2; exit 2; fi
done

if [ ${#rust[@]} -gt 0 ]; then
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
  fi
  args=()
  for g in "${rust[@]}"; do args+=(-p "$g"); done
  # Guests ship without debug info: smaller modules, faster compiles.
  (cd "$root" && CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true cargo build --quiet --release --target wasm32-wasip2 "${args[@]}")
  for g in "${rust[@]}"; do
    cp "$root/target/wasm32-wasip2/release/${g//-/_}.wasm" "$dist/$g.wasm"
  done
fi

for g in "${wanted[@]}"; do
  if is_in "$g" "${python_guests[@]}"; then
    cpy="componentize-py"
    [ -x "$root/.venv/bin/componentize-py" ] && cpy="$root/.venv/bin/componentize-py"
    if ! command -v "$cpy" >/dev/null; then
      echo "componentize-py not found: pip install componentize-py==0.25.1 (scripts/test does)" >&2
      exit 1
    fi
    world="$(python_world "$g")"
    (cd "$root/guests/python/$g" && "$cpy" -d "$root/wit" -w "$world" componentize app -o "$dist/$g.wasm" >/dev/null)
  fi
done
echo "guests built in ${dist#$root/}/: ${wanted[*]}"
