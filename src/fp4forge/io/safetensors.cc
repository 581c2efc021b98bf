#include "fp4forge/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "fp4forge/codec/half.h"

#include "fp4forge/base/error.h"
#include "fp4forge/io/files.h"
#include "fp4forge/io/json.h"

namespace fp4forge {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // safetensors MAX_HEADER_SIZE (FORMATS.md §6)
}  // namespace

int SafetensorsDTypeBits(const std::string& dtype) {
  static const std::map<std::string, int> kBits = {
      {"BOOL", 8},     {"U8", 8},           {"I8", 8},           {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8},
      {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"F4", 4},           {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"I16", 16},
      {"U16", 16},     {"F16", 16},         {"BF16", 16},        {"I32", 32},    {"U32", 32},    {"F32", 32},
      {"I64", 64},     {"U64", 64},         {"F64", 64},         {"C64", 64}};
  const auto it = kBits.find(dtype);
  return it == kBits.end() ? 0 : it->second;
}

int64_t SafetensorsTensor::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::optional<DType> SafetensorsTensor::FloatDType() const {
  if (dtype == "F32") return DType::kF32;
  if (dtype == "BF16") return DType::kBF16;
  if (dtype == "F16") return DType::kF16;
  return std::nullopt;
}

std::optional<float> SafetensorsTensor::Scalar() const {
  if (NumElements() != 1) return std::nullopt;
  if (dtype == "F32") {
    float value;
    std::memcpy(&value, data, sizeof(value));
    return value;
  }
  if (dtype != "BF16" && dtype != "F16") return std::nullopt;
  uint16_t bits;
  std::memcpy(&bits, data, sizeof(bits));
  return dtype == "BF16" ? DecodeBF16(bits) : DecodeF16(bits);
}

ConstMatrixView SafetensorsTensor::AsMatrix() const {
  const std::optional<DType> t = FloatDType();
  if (!t || shape.empty()) {
    Fail(ErrorCode::kUnsupported, "[safetensors] tensor '{}' is {} of rank {}; expected F32, BF16 or F16 of rank >= 1",
         name, dtype, shape.size());
  }
  const int64_t cols = shape.back();
  return {.data = data, .dtype = *t, .rows = cols == 0 ? 0 : NumElements() / cols, .cols = cols};
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = OpenRegularFile(path, "[safetensors]");
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    Fail(ErrorCode::kIo, "[safetensors] cannot stat '{}': {}", path, std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    mapping_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping_ == MAP_FAILED) mapping_ = nullptr;
  }
  ::close(fd);
  if (size_ > 0 && mapping_ == nullptr) Fail(ErrorCode::kIo, "[safetensors] cannot map '{}'", path);

  try {
    const auto* bytes = static_cast<const uint8_t*>(mapping_);
    auto bad = [&](std::string what) { Fail(ErrorCode::kInvalidData, "[safetensors] '{}': {}", path, what); };
    if (size_ < 8) bad(fmt::format("{} bytes; expected at least the 8-byte header length", size_));
    uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];  // little-endian
    if (header_bytes > kMaxHeaderBytes || header_bytes > size_ - 8) {
      bad(fmt::format("header length {} exceeds the file ({} bytes) or the 100 MB limit", header_bytes, size_));
    }
    const char* header = reinterpret_cast<const char*>(bytes + 8);
    std::string duplicate;
    const nlohmann::json json = ParseUntrustedJson(std::string_view(header, header_bytes),
                                                   fmt::format("[safetensors] '{}': the header", path), &duplicate);
    if (!json.is_object()) bad("header is not a JSON object");
    if (!duplicate.empty()) bad(fmt::format("tensor '{}' appears twice", duplicate));

    const uint8_t* data = bytes + 8 + header_bytes;
    const uint64_t data_bytes = size_ - 8 - header_bytes;
    for (const auto& [name, entry] : json.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) bad("__metadata__ is not an object");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string()) bad(fmt::format("__metadata__['{}'] is not a string", key));
          metadata_[key] = value.get<std::string>();
        }
        continue;
      }
      auto bad_tensor = [&, &name = name](std::string what) { bad(fmt::format("tensor '{}': {}", name, what)); };
      if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
        bad_tensor("expected an object with dtype, shape and data_offsets");
      }
      SafetensorsTensor t;
      t.name = name;
      if (!entry["dtype"].is_string()) bad_tensor("dtype is not a string");
      t.dtype = entry["dtype"].get<std::string>();
      const int bits = SafetensorsDTypeBits(t.dtype);
      if (bits == 0) bad_tensor(fmt::format("unknown dtype '{}'", t.dtype));
      if (!entry["shape"].is_array()) bad_tensor("shape is not a list");
      uint64_t elements = 1;
      for (const auto& d : entry["shape"]) {
        if (!d.is_number_unsigned()) bad_tensor("shape has a negative or non-integer dimension");
        const uint64_t dim = d.get<uint64_t>();
        if (__builtin_mul_overflow(elements, dim, &elements) || elements > (uint64_t{1} << 56)) {
          bad_tensor("shape is too large");
        }
        t.shape.push_back(static_cast<int64_t>(dim));
      }
      const auto& offsets = entry["data_offsets"];
      if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
          !offsets[1].is_number_unsigned()) {
        bad_tensor("data_offsets is not a pair of non-negative integers");
      }
      const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
      if (begin > end || end > data_bytes) {
        bad_tensor(fmt::format("data_offsets [{}, {}] outside the {} data bytes", begin, end, data_bytes));
      }
      const uint64_t total_bits = elements * static_cast<uint64_t>(bits);  // < 2^62: no overflow
      if (total_bits % 8 != 0 || (end - begin) * 8 != total_bits) {
        bad_tensor(total_bits % 8 != 0
                       ? fmt::format("shape × {} is {} bits, not a whole number of bytes", t.dtype, total_bits)
                       : fmt::format("{} bytes of data; shape × {} needs {} bytes", end - begin, t.dtype, total_bits / 8));
      }
      t.data = data + begin;
      t.num_bytes = static_cast<int64_t>(end - begin);
      tensors_.push_back(std::move(t));
    }
    // The data buffer must be exactly covered, in offset order, with no holes or overlaps.
    std::vector<const SafetensorsTensor*> by_offset;
    for (const SafetensorsTensor& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
      return a->data != b->data ? a->data < b->data : a->num_bytes < b->num_bytes;
    });
    const uint8_t* expected = data;
    for (const SafetensorsTensor* t : by_offset) {
      if (t->data != expected) {
        bad(fmt::format("tensor '{}' starts at data offset {}; expected {} (data must be contiguous, without "
                        "overlaps or gaps)", t->name, t->data - data, expected - data));
      }
      expected += t->num_bytes;
    }
    if (expected != data + data_bytes) {
      bad(fmt::format("{} trailing bytes after the last tensor", (data + data_bytes) - expected));
    }
  } catch (...) {
    if (mapping_) ::munmap(mapping_, size_);
    throw;
  }
}

void SafetensorsFile::Release(const SafetensorsTensor& tensor) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(tensor.data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(tensor.data) + tensor.num_bytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // advisory: errors ignored
}

void SafetensorsFile::Evict(const SafetensorsTensor& tensor) const {
  Release(tensor);
  if (tensor.num_bytes == 0) return;  // a length of 0 would mean "to the end of the file"
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // advisory
  const off_t offset = static_cast<off_t>(tensor.data - static_cast<const uint8_t*>(mapping_));
  ::posix_fadvise(fd, offset, static_cast<off_t>(tensor.num_bytes), POSIX_FADV_DONTNEED);
  ::close(fd);
}

void SafetensorsFile::Prefetch(const SafetensorsTensor& tensor) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(tensor.data) + tensor.num_bytes;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);  // advisory
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) ::munmap(mapping_, size_);
}

void SafetensorsFile::ReadIntoCache(const SafetensorsTensor& tensor) const {
  constexpr uintptr_t kStep = uintptr_t{64} << 20;  // mapped at a time: the memory bound stays the caller's
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t end = reinterpret_cast<uintptr_t>(tensor.data) + tensor.num_bytes;
  for (uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data) / page * page; begin < end; begin += kStep) {
    void* chunk = reinterpret_cast<void*>(begin);
    const size_t length = std::min(kStep, end - begin);
    // One call reads and maps every page (Linux 5.14+); older kernels take a touch per page.
    if (::madvise(chunk, length, MADV_POPULATE_READ) != 0) {
      uint8_t sum = 0;
      for (uintptr_t p = begin; p < begin + length; p += page) sum += *reinterpret_cast<const volatile uint8_t*>(p);
      static_cast<void>(sum);
    }
    // Unmaps only pages wholly inside the tensor: a neighbour's shared edge page may be in use.
    const uintptr_t first = std::max(begin, (reinterpret_cast<uintptr_t>(tensor.data) + page - 1) / page * page);
    const uintptr_t last = std::min(begin + length, end / page * page);
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
}

}  // namespace fp4forge
