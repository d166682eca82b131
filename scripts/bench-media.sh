#!/usr/bin/env bash
# The media benchmark of docs/benchmarks.md ("Media pipeline"): fetches
# Debian's wallpaper packages (freely licensed camera photos; nothing is
# committed), picks the JPEG photos of at least 300 KB (the largest size of
# each plasma wallpaper), and runs each through
#   - switchboard's pipeline (cmd/sbmedia: pure Go decode/resize, WebP via
#     gen2brain/webp), one process per image for its peak memory;
#   - libvips 8.14 (vipsthumbnail, what Sharp uses), same size and quality,
#     metadata stripped, /usr/bin/time for time and peak memory;
# and prints one TSV row per image and a summary. Then images/s with all
# cores: one process per core over the whole corpus.
#
#   scripts/bench-media.sh [WORKDIR]     # default /tmp/sb-media-bench
set -euo pipefail
W=${1:-/tmp/sb-media-bench}
SIDE=${SIDE:-2048}
Q=${Q:-80}
mkdir -p "$W/debs" "$W/x" "$W/out"
need=()
command -v vipsthumbnail >/dev/null || need+=(libvips-tools)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cd "$W/debs"
pkgs=(lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers digikam-data)
ls ./*.deb >/dev/null 2>&1 || apt-get download "${pkgs[@]}"
for d in ./*.deb; do dpkg -x "$d" "$W/x"; done
cd - >/dev/null
go build -o "$W/sbmedia" ./cmd/sbmedia

# The corpus: photos of at least 300 KB; of a plasma wallpaper, its largest file only.
find "$W/x" \( -iname '*.jpg' -o -iname '*.jpeg' \) -size +300k -printf '%s\t%p\n' |
  awk -F'\t' '{ key=$2; if (key ~ /wallpapers\/[^\/]+\/contents/) { sub(/\/contents\/.*/, "", key) }
               if (!(key in best) || $1 > size[key]) { best[key]=$2; size[key]=$1 } }
               END { for (k in best) print best[k] }' | sort > "$W/corpus.txt"
echo "corpus: $(wc -l < "$W/corpus.txt") photos" >&2

printf 'file\tin_bytes\tpx_in\tgo_out\tgo_ssim\tgo_s\tgo_mib\tvips_out\tvips_ssim\tvips_s\tvips_mib\n' > "$W/rows.tsv"
i=0
while read -r f; do
  i=$((i+1))
  go=$("$W/sbmedia" --side "$SIDE" --quality "$Q" "$f" < /dev/null)
  out="$W/out/$i.webp"
  vt=$( { /usr/bin/time -f '%e %M' vipsthumbnail "$f" -s "${SIDE}x${SIDE}>" -o "$out[Q=$Q,strip]" ; } 2>&1 | tail -1)
  vs=$("$W/sbmedia" --ssim "$f" "$out" 2>/dev/null || echo 0)
  px=$(vipsheader -f width "$f")x$(vipsheader -f height "$f")
  python3 - "$f" "$px" "$go" "$(stat -c %s "$out")" "$vs" "$vt" >> "$W/rows.tsv" <<'PY'
import json, sys
f, px, go, vout, vs, vt = sys.argv[1:]
g = json.loads(go); vsec, vkb = vt.split()
print("\t".join(map(str, [f.split("/x/", 1)[-1], g["in_bytes"], px, g["out_bytes"], round(g["ssim"], 4),
      round(g["seconds"], 3), round(g["max_rss_mib"]), vout, vs, vsec, round(int(vkb) / 1024)])))
PY
done < "$W/corpus.txt"

python3 - "$W/rows.tsv" <<'PY'
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
f = lambda k: [float(r[k]) for r in rows]
n = len(rows); inb = st.mean(f("in_bytes"))
for name, p in (("pure Go (switchboard)", "go"), ("libvips 8.14", "vips")):
    out = st.mean(f(p + "_out"))
    print(f"{name}: n={n} avg in {inb/1e3:.0f} KB, avg out {out/1e3:.0f} KB, reduction {100*(1-out/inb):.1f} %, "
          f"SSIM mean {st.mean(f(p+'_ssim')):.4f} min {min(f(p+'_ssim')):.4f}, "
          f"median {st.median(f(p+'_s')):.2f} s, peak RSS median {st.median(f(p+'_mib')):.0f} MiB max {max(f(p+'_mib')):.0f} MiB")
PY

# Images per second with all cores: one process per core over the corpus.
cores=$(nproc)
start=$(date +%s.%N)
xargs -a "$W/corpus.txt" -d '\n' -P "$cores" -n 4 "$W/sbmedia" --side "$SIDE" --quality "$Q" > /dev/null
go_t=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
i=0; while read -r f; do i=$((i+1)); echo "$f"; done < "$W/corpus.txt" |
  xargs -d '\n' -P "$cores" -I{} sh -c 'vipsthumbnail "$1" -s '"${SIDE}x${SIDE}"'\> -o "$(mktemp -u '"$W"'/out/p-XXXXXX).webp[Q='"$Q"',strip]"' _ {}
vips_t=$(echo "$(date +%s.%N) - $start" | bc)
n=$(wc -l < "$W/corpus.txt")
echo "images/s on $cores cores: pure Go $(echo "scale=2; $n / $go_t" | bc), libvips $(echo "scale=2; $n / $vips_t" | bc)"
