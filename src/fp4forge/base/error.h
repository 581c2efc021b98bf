// The one error type of fp4forge. Parsers and public entry points validate their input and throw
// Error; kernels assume validated input and never throw. The CLI maps ErrorCode to exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace fp4forge {

enum class ErrorCode {
  kInvalidArgument,  // a caller asked for something impossible (bad shape, unknown option)
  kInvalidData,      // the data itself is unusable (NaN/Inf weights, corrupt file)
  kUnsupported,      // valid, but not implemented (a dtype or format we do not handle)
  kIo,               // the operating system refused (open, read, write)
  kInterrupted,      // stopped by Ctrl-C or SIGTERM (base/interrupt.h)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Throws Error with a message formatted like "[Op] got X, expected Y".
template <typename... Args>
[[noreturn]] void Fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace fp4forge
