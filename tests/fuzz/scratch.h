// What the fuzz targets share: a scratch directory of this process (on tmpfs when there is one),
// files written into it, and the rule that a parser may reject its input only by throwing Error.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace fp4forge::fuzz {

namespace fs = std::filesystem;

// A directory removed when the process exits.
inline const fs::path& ScratchDir() {
  static const fs::path dir = [] {
    const fs::path parent = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = parent / ("fp4forge-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] { std::error_code ignored; fs::remove_all(ScratchDir(), ignored); });
    return d;
  }();
  return dir;
}

inline void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string_view AsText(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

}  // namespace fp4forge::fuzz
