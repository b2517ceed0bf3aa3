#!/usr/bin/env bash
# The whole benchmark table of this machine in one command:
#     bash benchmarks/run.sh
# jaxgen next to diffusers + PyTorch (eager and torch.compile, fp32 and bf16) on DDPM's CIFAR-10
# U-Net, sampling (DDIM) and training; scaling with batch (and device count where there are
# several); the other models; FID's cost. Rows go to benchmarks/results/<device>.json, the
# table to .md.
# On an accelerator: DDIM-50 at batch 256 (the issue's target), train batch 128. On a CPU the
# same programs at a small batch and few steps (env SAMPLE_BATCH, STEPS, TRAIN_BATCH, REPEATS
# override either).
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs the package and the PyTorch side unless this environment already has them (an
# offline accelerator box set up beforehand).
python -c "import jaxgen, grain, diffusers, torch" 2>/dev/null || python -m pip install -q -e ".[bench]"
BACKEND=$(python -c "import jax; print(jax.default_backend())")
DEVICE=$(python -c "import jax; print(jax.devices()[0].device_kind.replace(' ', '_'))")
DEVICES=$(python -c "import jax; print(jax.device_count())")
if [ "$BACKEND" = cpu ]; then
  : "${SAMPLE_BATCH:=2}" "${STEPS:=5}" "${TRAIN_BATCH:=4}" "${REPEATS:=3}"
  BATCHES="1,2,4,8"; PROFILE=(); DTYPE=fp32
else
  : "${SAMPLE_BATCH:=256}" "${STEPS:=50}" "${TRAIN_BATCH:=128}" "${REPEATS:=5}"
  BATCHES="32,64,128,256,512"; DTYPE=bf16; PROFILE=(--profile "runs/profile_$DEVICE")
fi
OUT=benchmarks/results/$DEVICE.json
run() { python -m benchmarks "$@" --repeats "$REPEATS" --out "$OUT"; }

run sample --model unet-cifar10 --batch "$SAMPLE_BATCH" --steps "$STEPS" --sampler ddim \
    --dtype fp32 --torch eager,compile
run train --model unet-cifar10 --batch "$TRAIN_BATCH" --dtype fp32 --torch eager,compile --calls 3
# Where that step goes: each of the U-Net's convolutions alone, beside PyTorch's kernel.
run layers --model unet-cifar10 --batch "$TRAIN_BATCH" --dtype "$DTYPE" --torch
if [ "$BACKEND" = cpu ]; then
  # No bf16 units on this CPU (torch's bf16 forward is ~30x its fp32 one here): one small
  # sampling row per framework shows it, and no bf16 training.
  run sample --model unet-cifar10 --batch 1 --steps 2 --sampler ddim --dtype bf16 \
      --torch eager,compile
else
  run sample --model unet-cifar10 --batch "$SAMPLE_BATCH" --steps "$STEPS" --sampler ddim \
      --dtype bf16 --torch eager,compile
  run train --model unet-cifar10 --batch "$TRAIN_BATCH" --dtype bf16 --torch eager,compile \
      --calls 3
fi
run sample --model unet-cifar10 --batch "$SAMPLE_BATCH" --steps "$STEPS" --guidance 3 \
    --dtype "$DTYPE" --torch compile "${PROFILE[@]}"
run scale --model unet-cifar10 --task sample --steps "$STEPS" --batches "$BATCHES" --dtype "$DTYPE"
if [ "$DEVICES" -gt 1 ]; then
  COUNTS=$(python -c "n=$DEVICES; print(','.join(str(2**i) for i in range(n.bit_length()) if n % 2**i == 0))")
  run scale --model unet-cifar10 --task sample --steps "$STEPS" --batches "$SAMPLE_BATCH" \
      --device-counts "$COUNTS" --dtype "$DTYPE"
fi
# Stable Diffusion 1.5's U-Net (random weights) under DPM-Solver++ with guidance, beside
# diffusers' UNet2DConditionModel: 512x512 on an accelerator; on a CPU 256x256 (at 128x128 the
# U-Net's 2x2 level meets XLA:CPU's slow small-image convolutions) and a few steps.
if [ "$BACKEND" = cpu ]; then
  run sample --model sd15 --size 256 --batch 1 --steps 3 --guidance 6.5 --dtype fp32 \
      --torch eager,compile
else
  run sample --model sd15 --size 512 --batch 8 --steps 25 --guidance 6.5 --dtype bf16 \
      --torch eager,compile
fi
# Text to image: prompt tokens to decoded images, guided against the empty prompt (the issue's
# `generate` at batch 64), and the latent diffusion train step.
run sample --model ldm --batch 64 --steps 50 --guidance 4 --dtype "$DTYPE"
run train --model ldm --batch "$TRAIN_BATCH" --dtype "$DTYPE" --calls 3
# FID's cost: Inception-v3 featurising CIFAR-10-sized images (the resize to 299 included), the
# statistics update per batch and the Frechet distance, and the estimate of a 50k-sample FID
# derived from them; on an accelerator also KID and precision/recall on 10,000 features a set.
if [ "$BACKEND" = cpu ]; then
  run fid --batch 8 --size 32 --dtype fp32
else
  run fid --batch 256 --size 32 --dtype bf16 --metric-samples 10000
  run fid --batch 256 --size 32 --dtype fp32
fi
for model in unet-mnist vae dcgan; do
  run all --model "$model" --batch "$TRAIN_BATCH" --dtype "$DTYPE" --calls 3
done
python -m benchmarks peak --dtype "$DTYPE" | tee "benchmarks/results/${DEVICE}_peak.json"
python -m benchmarks table "$OUT" > "benchmarks/results/$DEVICE.md"
echo "wrote $OUT and benchmarks/results/$DEVICE.md"
