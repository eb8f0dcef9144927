#!/usr/bin/env bash
# Decompress the paper's released routing data.
#
# Usage: bash decompress_data.sh [SRC] [DST] [JOBS]
#   SRC   folder of gzipped data (default: compressed_data; may be a symlink)
#   DST   output folder (default: data)
#   JOBS  parallel gunzip processes (default: number of CPUs)
#
# Every SRC/<path>.gz becomes DST/<path>. Each file is written under a temporary name in its destination
# folder and renamed when complete, so an interrupted run never leaves a truncated file; files whose
# destination is already newer than their source are skipped.
set -euo pipefail

SRC="${1:-compressed_data}"
DST="${2:-data}"
JOBS="${3:-$(nproc)}"

if [ ! -d "$SRC" ]; then
  cat >&2 <<EOF
decompress_data.sh: source folder '$SRC' not found.
It should hold the data released with "Lookahead Routing for Large Language Models" (NeurIPS 2025,
MIT licence): compressed_data/ with test/ and train/ of gzipped files.
In this workplace it is at ../shared/data/compressed_data; link it from the repository root with
    ln -s ../shared/data/compressed_data compressed_data
or obtain the paper's released compressed_data and pass its path:
    bash decompress_data.sh /path/to/compressed_data data
EOF
  exit 1
fi

# Strip trailing slashes so that SRC/<path> can be cut back to <path>.
while [ "${SRC%/}" != "$SRC" ] && [ "$SRC" != "/" ]; do SRC="${SRC%/}"; done

# -H follows SRC itself when it is a symlink.
if [ -z "$(find -H "$SRC" -type f -name '*.gz' -print -quit)" ]; then
  echo "decompress_data.sh: no .gz files under '$SRC'; is it the released compressed_data folder?" >&2
  exit 1
fi

decompress_one() {
  local src="$1"
  local dest="$DST/${src#"$SRC"/}"
  dest="${dest%.gz}"
  if [ -e "$dest" ] && [ "$dest" -nt "$src" ]; then
    echo "skip $dest"
    return 0
  fi
  local dir tmp
  dir="$(dirname "$dest")"
  mkdir -p "$dir"
  tmp="$dir/.$(basename "$dest").$$.tmp"
  if gzip -dc "$src" > "$tmp" && mv -f "$tmp" "$dest"; then
    echo "wrote $dest"
  else
    rm -f "$tmp"
    echo "decompress_data.sh: failed to decompress $src" >&2
    return 1
  fi
}
export -f decompress_one
export SRC DST

# Progress on stderr at most every 10 s (files done, time elapsed and left); the summary on stdout.
# VERBOSE=1 also lists every file written.
total=$(find -H "$SRC" -type f -name '*.gz' | wc -l)
started=$SECONDS
last=$SECONDS
done_files=0 wrote=0 skipped=0
while IFS= read -r line; do
  case "$line" in
    "wrote "*) wrote=$((wrote + 1)); [ "${VERBOSE:-0}" = 1 ] && echo "$line" ;;
    "skip "*) skipped=$((skipped + 1)) ;;
    *) continue ;;
  esac
  done_files=$((done_files + 1))
  if [ $((SECONDS - last)) -ge 10 ] && [ "$done_files" -lt "$total" ]; then
    last=$SECONDS
    elapsed=$((SECONDS - started))
    echo "decompressing: ${done_files}/${total} files, ${elapsed}s elapsed, ~$((elapsed * (total - done_files) / done_files))s left" >&2
  fi
done < <(find -H "$SRC" -type f -name '*.gz' -print0 | xargs -0 -n 1 -P "$JOBS" bash -c 'decompress_one "$1"' _ \
         || echo "failed")
if [ "$done_files" -ne "$total" ]; then
  echo "decompress_data.sh: some files failed to decompress (see above); rerun to retry them." >&2
  exit 1
fi
echo "Decompressed '$SRC' into '$DST': ${wrote} file(s) written, ${skipped} already up to date ($((SECONDS - started))s)."
