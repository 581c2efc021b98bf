// libFuzzer target: a whole .safetensors file. Opening either throws Error or yields tensors that
// are safe to read (SafetensorsFile's contract), so every byte of every tensor is read here.
#include <cstdint>

#include "fp4forge/base/error.h"
#include "fp4forge/io/safetensors.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp4forge;
  const auto path = fuzz::ScratchDir() / "model.safetensors";
  fuzz::WriteFile(path, fuzz::AsText(data, size));
  try {
    const SafetensorsFile file(path.string());
    volatile uint8_t sink = 0;
    for (const SafetensorsTensor& t : file.tensors()) {
      for (int64_t i = 0; i < t.num_bytes; ++i) sink = sink ^ t.data[i];
      (void)t.Scalar();
      if (t.FloatDType() && !t.shape.empty()) (void)t.AsMatrix();
    }
  } catch (const Error&) {
  }
  return 0;
}
