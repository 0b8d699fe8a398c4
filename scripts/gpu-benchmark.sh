#!/usr/bin/env bash
# This project's GPU figures beside diffusers', on a Linux machine with an NVIDIA GPU and a Python with CUDA PyTorch but
# no .NET SDK and no network (docs/performance.md, "GPU benchmark").
#
#   scripts/gpu-benchmark.sh pack [--output DIR]
#       Here, with the .NET SDK: writes one folder (default .artifacts/gpu-pack, under 64 MB) holding a framework-dependent
#       publish of the benchmark and of the CUDA tests built with the external LibTorch backend (no LibTorch inside), the
#       .NET runtime, the tiny fixture models and reference tensors, the diffusers anchor, and this script.
#   ./gpu-benchmark.sh run [--output DIR] [--batches 1,4,8,16] [--repeats 2] [--dry-run]
#       There, from the pack folder: the CUDA correctness checks, diffusers' anchor and this project's benchmark (bfloat16,
#       1024², each batch size), the batching figures (8 concurrent single requests at 1024², batching on and off, against
#       one request of 8 images), then the side-by-side tables, printed and written with the raw JSON to the output folder
#       (default results-<UTC time> beside the pack). LibTorch comes from `python3 -c "import torch"` (WUERSTCHEN_PYTHON
#       names another interpreter; WUERSTCHEN_LIBTORCH a LibTorch folder). --dry-run runs the same steps on the CPU with
#       the tiny configurations and no anchor, to check a pack without a GPU.
set -euo pipefail
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
limit_bytes=$((64 * 1000 * 1000))

die() { echo "error: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }

usage() {
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

pack() {
  local root output="" build
  root=$(cd "$here/.." && pwd)
  [ -f "$root/Wuerstchen.Functions.sln" ] || die "pack runs in the repository (scripts/gpu-benchmark.sh pack); this copy is in $here."
  while [ $# -gt 0 ]; do
    case "$1" in
      --output) output=${2:?--output needs a folder}; shift 2 ;;
      *) die "pack: unknown option '$1' (pack [--output DIR])" ;;
    esac
  done
  output=${output:-$root/.artifacts/gpu-pack}
  command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is not on PATH; pack needs it (run does not)."
  local fixtures=${WUERSTCHEN_PARITY_DIR:-$root/../shared/fixtures/parity}
  local anchor=${WUERSTCHEN_DIFFUSERS_ANCHOR:-$root/../shared/anchors/diffusers}
  [ -d "$fixtures/models/prior-pipeline" ] || die "no fixture models under $fixtures (set WUERSTCHEN_PARITY_DIR)."
  [ -f "$anchor/bench.py" ] || die "no diffusers anchor at $anchor (set WUERSTCHEN_DIFFUSERS_ANCHOR)."

  build="$root/.artifacts/gpu-pack-build"
  rm -rf "$build" "$output"
  mkdir -p "$build/app" "$build/fixtures/models" "$build/fixtures/cases" "$output/diffusers"

  for project in src/Wuerstchen.Benchmarks tests/Wuerstchen.Cuda.Tests; do
    say "publishing $project with the external LibTorch backend"
    # A separate artifacts folder keeps this backend's restore and build apart from the normal (cpu) build.
    dotnet publish "$root/$project" -c Release -r linux-x64 --self-contained false \
      -p:TorchBackend=external -p:TorchSharpNativePatchForce=true \
      --artifacts-path "$build/artifacts" -o "$build/app" -v q -nologo >&2
  done
  # The test SDK's code-coverage collector and instrumentation engines (about 24 MB) serve `dotnet test` only.
  rm -rf "$build/app/CodeCoverage" "$build/app"/{x86,x64,arm64,alpine,ubuntu,macos}
  local natives
  natives=$(find "$build/app" \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' \) -print)
  [ -z "$natives" ] || die "the external publish holds LibTorch natives, which must come from the GPU machine's PyTorch: $natives"
  [ -f "$build/app/libLibTorchSharp.so" ] || die "the publish has no libLibTorchSharp.so (TorchSharp's bindings)."

  say "collecting the .NET runtime"
  local dotnet_root framework
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  framework=$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/10.* 2>/dev/null | sort -V | tail -1)
  [ -n "$framework" ] || die "no .NET 10 runtime under $dotnet_root/shared/Microsoft.NETCore.App."
  local fxr
  fxr=$(ls -d "$dotnet_root"/host/fxr/* | sort -V | tail -1)
  # xz takes the runtime (ASP.NET Core's included) well below gzip's size; Ubuntu and Debian images have it (tar -J).
  local runtime_files=(dotnet "host/fxr/$(basename "$fxr")" "shared/Microsoft.NETCore.App/$(basename "$framework")")
  # The load benchmark runs the workflows on the embedded Durable engine, whose sidecar is an ASP.NET Core gRPC server.
  [ -d "$dotnet_root/shared/Microsoft.AspNetCore.App/$(basename "$framework")" ] \
    || die "no ASP.NET Core runtime $(basename "$framework") under $dotnet_root/shared/Microsoft.AspNetCore.App (the load benchmark needs it)."
  runtime_files+=("shared/Microsoft.AspNetCore.App/$(basename "$framework")")
  runtime_files+=($(cd "$dotnet_root" && ls LICENSE* ThirdPartyNotices* 2>/dev/null || true))
  if command -v xz >/dev/null; then
    XZ_OPT=-T0 tar -cJf "$output/dotnet-runtime.tar.xz" -C "$dotnet_root" "${runtime_files[@]}"
  else
    tar -czf "$output/dotnet-runtime.tar.gz" -C "$dotnet_root" "${runtime_files[@]}"
  fi

  say "collecting the fixtures and the anchor"
  cp -r "$fixtures/models/prior-pipeline" "$fixtures/models/decoder-pipeline" "$build/fixtures/models/"
  cp "$fixtures"/cases/pipeline_*.safetensors "$fixtures"/cases/{prior_forward,decoder_forward,vqgan}.safetensors "$build/fixtures/cases/"
  cp "$fixtures"/README.md "$fixtures"/manifest.json "$build/fixtures/" 2>/dev/null || true
  chmod -R u+w "$build/fixtures"
  # xz here too: with the workflows (the load benchmark) beside the benchmark the application gzipped would not fit.
  if command -v xz >/dev/null; then
    XZ_OPT=-T0 tar -cJf "$output/wuerstchen.tar.xz" -C "$build" app fixtures
  else
    tar -czf "$output/wuerstchen.tar.gz" -C "$build" app fixtures
  fi
  cp "$anchor"/* "$output/diffusers/"
  chmod -R u+w "$output/diffusers"
  cp "${BASH_SOURCE[0]}" "$output/gpu-benchmark.sh"
  chmod +x "$output/gpu-benchmark.sh"
  local commit
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit+uncommitted"
  cat > "$output/pack.json" <<JSON
{"commit": "$commit", "packed": "$(date -u +%Y-%m-%dT%H:%MZ)", "runtime": "$(basename "$framework")", "torchBackend": "external"}
JSON
  cat > "$output/README.md" <<'MD'
# Würstchen Functions GPU benchmark pack

On a Linux machine with an NVIDIA GPU and a Python whose PyTorch has CUDA (and transformers), no .NET or network needed:

    ./gpu-benchmark.sh run            # CUDA checks, diffusers' anchor, this project's benchmark, side by side

Options: `--output DIR` (default results-<UTC time> here), `--batches 1,4,8,16`, `--repeats 2`, `--dry-run` (CPU, tiny
models, no anchor). `WUERSTCHEN_PYTHON` picks the interpreter; `WUERSTCHEN_LIBTORCH` a LibTorch folder instead of
PyTorch's. Everything unpacks into `work/` beside this file.
MD

  local size
  size=$(du -sb "$output" | cut -f1)
  echo "Pack: $output ($((size / 1000000)) MB of at most $((limit_bytes / 1000000)) MB): $(cd "$output" && ls | tr '\n' ' ')"
  [ "$size" -lt "$limit_bytes" ] || die "the pack is $size bytes, over the $limit_bytes limit."
}

run() {
  local output="" batches=1,4,8,16 repeats=2 dry=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --output) output=${2:?--output needs a folder}; shift 2 ;;
      --batches) batches=${2:?--batches needs a list such as 1,4,8,16}; shift 2 ;;
      --repeats) repeats=${2:?--repeats needs a count}; shift 2 ;;
      --dry-run) dry=true; shift ;;
      *) die "run: unknown option '$1' (run [--output DIR] [--batches 1,4,8,16] [--repeats 2] [--dry-run])" ;;
    esac
  done
  [ -f "$here/pack.json" ] || die "run works from a pack folder (made by 'scripts/gpu-benchmark.sh pack'); $here is not one."
  [[ $batches =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--batches must be a comma-separated list of batch sizes, such as 1,4,8,16."
  [[ $repeats =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive whole number."
  local started=$SECONDS work="$here/work"
  output=${output:-$here/results-$(date -u +%Y%m%dT%H%M%SZ)}
  mkdir -p "$output"
  output=$(cd "$output" && pwd)

  say "unpacking into $work"
  rm -rf "$work"
  mkdir -p "$work/dotnet" "$work/diffusers"
  if [ -f "$here/dotnet-runtime.tar.xz" ]; then
    command -v xz >/dev/null || die "the .NET runtime is packed with xz, which this machine lacks (install xz-utils, or pack where xz is missing to get gzip)."
    tar -xJf "$here/dotnet-runtime.tar.xz" -C "$work/dotnet"
  else
    tar -xzf "$here/dotnet-runtime.tar.gz" -C "$work/dotnet"
  fi
  if [ -f "$here/wuerstchen.tar.xz" ]; then
    tar -xJf "$here/wuerstchen.tar.xz" -C "$work"
  else
    tar -xzf "$here/wuerstchen.tar.gz" -C "$work"
  fi
  local dotnet="$work/dotnet/dotnet" app="$work/app" fixtures="$work/fixtures"
  export DOTNET_ROOT="$work/dotnet"

  # LibTorch for the external backend: a configured folder, else this Python's PyTorch.
  local python=${WUERSTCHEN_PYTHON:-python3} torch_lib=""
  if [ -z "${WUERSTCHEN_LIBTORCH:-}" ]; then
    torch_lib=$("$python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null) \
      || die "no LibTorch: WUERSTCHEN_LIBTORCH is not set and '$python -c \"import torch\"' fails. Use a Python with PyTorch (WUERSTCHEN_PYTHON) or set WUERSTCHEN_LIBTORCH."
    export WUERSTCHEN_LIBTORCH=$torch_lib
  fi
  export LD_LIBRARY_PATH="$WUERSTCHEN_LIBTORCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local device=cuda
  if $dry; then
    device=cpu
  else
    command -v nvidia-smi >/dev/null && nvidia-smi -L | tee "$output/gpu.txt" >&2 || true
    "$python" -c "import torch; assert torch.cuda.is_available(), 'PyTorch sees no CUDA device'" \
      || die "'$python' has no working CUDA PyTorch (run with --dry-run to check a pack on a CPU)."
  fi
  say "LibTorch from $WUERSTCHEN_LIBTORCH; device $device"
  "$dotnet" "$app/Wuerstchen.Benchmarks.dll" --self-check --device "$device" | tee "$output/self-check.txt" >&2

  local status=0 checks="passed" anchor_json=""
  say "1/4 correctness checks on $device (tests with the trait Category=Cuda)"
  local t0=$SECONDS
  if WUERSTCHEN_TEST_DEVICE=$device WUERSTCHEN_PARITY_DIR="$fixtures" CI=true \
     "$dotnet" "$app/Wuerstchen.Cuda.Tests.dll" -trait "Category=Cuda" -noColor -xml "$output/checks.xml" > "$output/checks.log" 2>&1; then
    checks="passed"
  else
    checks="FAILED (see checks.log)"
    status=1
  fi
  tail -n 5 "$output/checks.log" >&2
  echo "checks: $checks in $((SECONDS - t0)) s" >&2

  say "2/4 diffusers' anchor"
  t0=$SECONDS
  if $dry; then
    echo "skipped: the anchor needs a CUDA GPU (dry run)" | tee "$output/diffusers.log" >&2
  else
    tar -xzf "$here/diffusers/diffusers-src.tar.gz" -C "$work/diffusers"
    if PYTHONPATH="$work/diffusers/src${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/diffusers/bench.py" \
        --tokenizer "$fixtures/models/prior-pipeline/tokenizer" --batches "$batches" --dtype bfloat16 --size 1024 \
        --repeats "$repeats" --json "$output/diffusers.json" > "$output/diffusers.log" 2>&1; then
      anchor_json="$output/diffusers.json"
    else
      echo "the anchor failed (see diffusers.log); the table has no diffusers column" >&2
      status=1
    fi
    tail -n 3 "$output/diffusers.log" >&2
  fi
  echo "anchor: $((SECONDS - t0)) s" >&2

  say "3/4 this project's benchmark"
  t0=$SECONDS
  local args=(--device "$device" --batches "$batches" --repeats "$repeats" --json "$output/wuerstchen.json" --markdown "$output/table.md"
              --tokenizer "$fixtures/models/prior-pipeline/tokenizer")
  if $dry; then
    args+=(--tiny --precision float32)
  else
    args+=(--precision bfloat16 --size 1024)
  fi
  [ -n "$anchor_json" ] && args+=(--compare "$anchor_json")
  if ! "$dotnet" "$app/Wuerstchen.Benchmarks.dll" "${args[@]}" > "$output/benchmark.log" 2>&1; then
    tail -n 20 "$output/benchmark.log" >&2
    die "the benchmark failed (see $output/benchmark.log)"
  fi
  echo "benchmark: $((SECONDS - t0)) s" >&2

  # Batching under load: concurrent single requests through the workflows, batching on and off, against one request of
  # as many images (docs/performance.md, "Batching concurrent requests"). On the GPU 8 requests at 1024² with Stage C and B
  # at the published sizes; dry, the largest of --batches with the fixture's tiny models.
  say "4/4 batching under load"
  t0=$SECONDS
  local load_args=(--load --device "$device" --repeats "$repeats" --json "$output/load.json" --markdown "$output/load.md"
                   --tokenizer "$fixtures/models/prior-pipeline/tokenizer")
  if $dry; then
    load_args+=(--tiny --precision float32 --size 128 --concurrent "$(tr ',' '\n' <<< "$batches" | sort -n | tail -1)")
  else
    load_args+=(--precision bfloat16 --size 1024 --concurrent 8)
  fi
  if ! "$dotnet" "$app/Wuerstchen.Benchmarks.dll" "${load_args[@]}" > "$output/load.log" 2>&1; then
    tail -n 20 "$output/load.log" >&2
    die "the load benchmark failed (see $output/load.log)"
  fi
  echo "load: $((SECONDS - t0)) s" >&2

  {
    echo "# GPU benchmark, $(date -u +%Y-%m-%d) ($(cat "$here/pack.json"))"
    echo
    [ -f "$output/gpu.txt" ] && { sed 's/^/    /' "$output/gpu.txt"; echo; }
    echo "Correctness checks on $device: $checks."
    echo
    cat "$output/table.md"
    echo
    echo "Batching under load:"
    echo
    cat "$output/load.md"
    echo
    echo "Whole run: $((SECONDS - started)) s."
  } > "$output/summary.md"
  echo
  cat "$output/summary.md"
  echo
  echo "Written to $output: summary.md, table.md, wuerstchen.json$([ -n "$anchor_json" ] && echo ", diffusers.json"), load.md, load.json, checks.xml and the logs."
  return $status
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
