// Streams a .safetensors file: the header is written first from the tensors' declared dtypes and
// shapes, then each tensor's bytes in declaration order, so only one tensor needs to be in memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace fp4forge {

struct TensorSpec {
  std::string name;
  std::string dtype;  // safetensors dtype string: "U8", "F8_E4M3", "F32", "BF16", ...
  std::vector<int64_t> shape;

  int64_t NumBytes() const;  // shape × dtype (throws Error for an unknown dtype or a partial byte)
};

class SafetensorsWriter {
 public:
  // Creates `path` and writes the header (keys sorted, padded with spaces to a multiple of 8 bytes
  // as the reference writer does). Throws Error(kIo) naming the path on any failure.
  SafetensorsWriter(const std::string& path, std::vector<TensorSpec> tensors,
                    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  ~SafetensorsWriter();  // closes; a file that was not Finish()ed is incomplete (callers delete it)
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next tensor, in declaration order; its size must match its spec.
  void Write(const std::string& name, std::span<const uint8_t> bytes);
  // Flushes and closes; throws Error(kIo) when the data did not reach the disk (e.g. disk full).
  void Finish();

 private:
  std::string path_;
  std::vector<TensorSpec> tensors_;
  size_t next_ = 0;
  std::FILE* file_ = nullptr;
};

}  // namespace fp4forge
