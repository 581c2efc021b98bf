// libFuzzer target: config.json and hf_quant_config.json (the input up to its first NUL byte, and
// after it if there is one) beside the NVFP4 weights of the llama3 fixture, quantized once at
// start. Each input is inspected and read as the engine reads a model's architecture.
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/engine/config.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/pipeline/inspect_checkpoint.h"
#include "fp4forge/pipeline/quantize_checkpoint.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp4forge;
  static const fuzz::fs::path dir = [] {
    const fuzz::fs::path d = fuzz::ScratchDir() / "nvfp4";
    QuantizeCheckpoint(FP4FORGE_SOURCE_DIR "/tests/fixtures/llama3", d.string(), {.threads = 1});
    return d;
  }();
  const std::string_view input = fuzz::AsText(data, size);
  const size_t nul = input.find('\0');
  fuzz::WriteFile(dir / "config.json", input.substr(0, nul));
  if (nul == std::string_view::npos) {
    fuzz::fs::remove(dir / "hf_quant_config.json");
  } else {
    fuzz::WriteFile(dir / "hf_quant_config.json", input.substr(nul + 1));
  }
  try {
    const Checkpoint checkpoint(dir.string());
    (void)InspectCheckpoint(checkpoint);
    (void)engine::ParseModelConfig(checkpoint.config(), "config.json");
  } catch (const Error&) {
  }
  return 0;
}
