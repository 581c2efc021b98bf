// libFuzzer target: model.safetensors.index.json of a two-shard checkpoint (the qwen3_moe fixture's
// shards and config), opened as a Checkpoint and inspected.
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/pipeline/inspect_checkpoint.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp4forge;
  static const fuzz::fs::path dir = [] {
    const fuzz::fs::path d = fuzz::ScratchDir() / "checkpoint";
    fuzz::fs::copy(FP4FORGE_SOURCE_DIR "/tests/fixtures/qwen3_moe", d);
    return d;
  }();
  fuzz::WriteFile(dir / "model.safetensors.index.json", fuzz::AsText(data, size));
  try {
    const Checkpoint checkpoint(dir.string());
    (void)InspectCheckpoint(checkpoint);
  } catch (const Error&) {
  }
  return 0;
}
