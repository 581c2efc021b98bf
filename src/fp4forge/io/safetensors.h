// Read-only view of one .safetensors file (FORMATS.md §6), memory-mapped. Opening validates the
// whole header; a file that opens is safe to index.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fp4forge/base/dtype.h"

namespace fp4forge {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written: "BF16", "F32", "U8", "F8_E4M3", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping; not aligned in general
  int64_t num_bytes = 0;

  int64_t NumElements() const;
  // The element type when it is one fp4forge quantizes (F32, BF16, F16).
  std::optional<DType> FloatDType() const;
  // The tensor as a [prod(shape[:-1]), shape[-1]] matrix; throws Error unless FloatDType() and rank >= 1.
  ConstMatrixView AsMatrix() const;
  // The value of a one-element F32/BF16/F16 tensor (a per-tensor scale); none for anything else.
  std::optional<float> Scalar() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws Error(kIo) when it cannot be read and Error(kInvalidData)
  // naming the file (and tensor) when it breaks the format: header length beyond the file, invalid
  // or non-object JSON, unknown dtype, negative or overflowing shape, offsets out of range, size !=
  // shape × dtype, overlapping, unsorted or gapped data, trailing bytes, duplicate names.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Drops the mapped pages that lie wholly inside `tensor` from this process (the data stays in
  // the file and is read again on the next access), so that streaming over a checkpoint keeps
  // only the tensor at hand resident.
  void Release(const SafetensorsTensor& tensor) const;
  // Release, and drops the tensor's pages from the page cache as well (advisory): for a tensor
  // read for the last time, whose memory the kernel can then reuse at once.
  void Evict(const SafetensorsTensor& tensor) const;
  // Asks the kernel to start reading `tensor` from disk now (asynchronously), so that I/O overlaps
  // with work on the tensor before it.
  void Prefetch(const SafetensorsTensor& tensor) const;
  // Reads `tensor` from disk into the page cache now (blocking), 64 MiB at a time, keeping none of
  // it mapped in this process (a reader thread ahead of the tensor's user).
  void ReadIntoCache(const SafetensorsTensor& tensor) const;

 private:
  std::string path_;
  void* mapping_ = nullptr;
  size_t size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Bits per element of a safetensors dtype string (F4: 4), or 0 for an unknown name.
int SafetensorsDTypeBits(const std::string& dtype);

}  // namespace fp4forge
