#include "fp4forge/io/safetensors_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/io/safetensors.h"

namespace fp4forge {

int64_t TensorSpec::NumBytes() const {
  const int bits = SafetensorsDTypeBits(dtype);
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  if (bits == 0 || (elements * bits) % 8 != 0) {
    Fail(ErrorCode::kInvalidArgument, "[safetensors writer] tensor '{}': dtype '{}' with {} elements", name, dtype,
         elements);
  }
  return elements * bits / 8;
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorSpec> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tensors_(std::move(tensors)) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const TensorSpec& t : tensors_) {
    const int64_t bytes = t.NumBytes();
    if (header.contains(t.name)) Fail(ErrorCode::kInvalidArgument, "[safetensors writer] tensor '{}' declared twice", t.name);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) Fail(ErrorCode::kIo, "[safetensors writer] cannot create '{}': {}", path, std::strerror(errno));
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>((text.size() >> (8 * i)) & 0xFF);
  if (std::fwrite(length, 1, 8, file_) != 8 || std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
    Fail(ErrorCode::kIo, "[safetensors writer] cannot write '{}': {}", path, std::strerror(errno));
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) std::fclose(file_);
}

void SafetensorsWriter::Write(const std::string& name, std::span<const uint8_t> bytes) {
  if (next_ >= tensors_.size() || tensors_[next_].name != name) {
    Fail(ErrorCode::kInvalidArgument, "[safetensors writer] '{}': got tensor '{}', expected '{}'", path_, name,
         next_ < tensors_.size() ? tensors_[next_].name : "no more tensors");
  }
  const int64_t expected = tensors_[next_].NumBytes();
  if (static_cast<int64_t>(bytes.size()) != expected) {
    Fail(ErrorCode::kInvalidArgument, "[safetensors writer] '{}': tensor '{}' has {} bytes, expected {}", path_, name,
         bytes.size(), expected);
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    Fail(ErrorCode::kIo, "[safetensors writer] cannot write '{}' (tensor '{}'): {}", path_, name, std::strerror(errno));
  }
  ++next_;
}

void SafetensorsWriter::Finish() {
  if (next_ != tensors_.size()) {
    Fail(ErrorCode::kInvalidArgument, "[safetensors writer] '{}': {} of {} tensors written", path_, next_,
         tensors_.size());
  }
  const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int error = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok || !closed) Fail(ErrorCode::kIo, "[safetensors writer] cannot finish '{}': {}", path_, std::strerror(error));
}

}  // namespace fp4forge
