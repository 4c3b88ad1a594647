#!/usr/bin/env bash
# Run chapters' `full` profiles as plain scripts on a GPU machine without network (the device tool's), one after
# another so that each wall time is the chapter's alone. Needs .pack/ from `make gpu-pack` (data, the corruption
# wheel, the commit). Results go to results/full/<stem>.json; logs and times to $OUT (default /tmp/full_profiles).
#   bash bench/full_profiles.sh 03_vc_experiments 05_vae_as
#   BUDGET_S=600 bash bench/full_profiles.sh     # (make full-gpu) stalest chapter first, each only if it fits
#                                                # the time left (lvmcls.gpu_window); run again to continue
# CHAPTER_TIMEOUT (s, default 560) stops a chapter that overruns; LVMCLS_PROFILE=smoke tries the path on a CPU.
set -u
python=${PYTHON:-python3}  # the interpreter that has torch (the GPU image: python3)
pack=${PACK:-$PWD/.pack}
out=${OUT:-/tmp/full_profiles}
[ -f "$pack/COMMIT" ] || { echo "no $pack/COMMIT: run 'make gpu-pack' on the build machine first" >&2; exit 2; }
mkdir -p "$out"
if ls "$pack"/wheels/*.whl > /dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lvmcls_site \
    "$pack"/wheels/*.whl || exit 3
  export PYTHONPATH=/tmp/lvmcls_site
fi
data=/tmp/lvmcls_data  # a copy: the chapters write decoded caches beside the files, and .pack must stay small
rm -rf "$data" && cp -r "$pack" "$data" || exit 3
export LVMCLS_DATA=$data LVMCLS_CIFAR10_JPEG=$data/cifar10-jpeg.tar.gz LVMCLS_GIT_COMMIT=$(cat "$pack/COMMIT") \
  LVMCLS_PROFILE=${LVMCLS_PROFILE:-full} LVMCLS_PROGRESS=0 PYTHONUNBUFFERED=1 MPLBACKEND=Agg \
  LVMCLS_CACHE=${LVMCLS_CACHE:-/tmp/lvmcls_cache} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -n "${BUDGET_S:-}" ]; then
  exec "$python" -m lvmcls.gpu_window --budget "$BUDGET_S" --out "$out" --profile "$LVMCLS_PROFILE" "$@"
fi
for stem in "$@"; do
  start=$(date +%s)
  timeout "${CHAPTER_TIMEOUT:-560}" "$python" "notebooks/$stem.py" > "$out/$stem.log" 2>&1
  echo "$stem rc=$? $(( $(date +%s) - start )) s" | tee -a "$out/times.txt"
done
