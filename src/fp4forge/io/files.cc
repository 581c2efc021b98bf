#include "fp4forge/io/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

std::string_view KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

[[noreturn]] void FailNotRegular(const std::filesystem::path& path, std::string_view tag, mode_t mode) {
  Fail(ErrorCode::kIo, "{} '{}' is {}; expected a regular file", tag, path.string(), KindOf(mode));
}

[[noreturn]] void FailErrno(const std::filesystem::path& path, std::string_view tag, int error) {
  if (error == ELOOP) Fail(ErrorCode::kIo, "{} '{}' is a loop of symbolic links", tag, path.string());
  Fail(ErrorCode::kIo, "{} cannot open '{}': {}", tag, path.string(), std::strerror(error));
}

}  // namespace

bool PathExists(const std::filesystem::path& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

void RequireRegularFile(const std::filesystem::path& path, std::string_view tag) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) FailErrno(path, tag, errno);
  if (!S_ISREG(st.st_mode)) FailNotRegular(path, tag, st.st_mode);
}

int OpenRegularFile(const std::filesystem::path& path, std::string_view tag) {
  RequireRegularFile(path, tag);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) FailErrno(path, tag, errno);
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const mode_t mode = st.st_mode;
    ::close(fd);
    FailNotRegular(path, tag, mode);
  }
  return fd;
}

std::string ReadRegularFile(const std::filesystem::path& path, std::string_view tag) {
  const int fd = OpenRegularFile(path, tag);
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      Fail(ErrorCode::kIo, "{} cannot read '{}': {}", tag, path.string(), std::strerror(error));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace fp4forge
